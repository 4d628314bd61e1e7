-- The typed errors a caller can cause: SQLSTATE WF + HTTP status, the symbolic code as HINT.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
BEGIN;
SET LOCAL workflow.app_id = 'default';
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf"}}') IS NOT NULL AS created;

-- 400: shape
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"run_exploded"}');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"hook_conflict","correlationId":"h"}');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"step_created","eventData":{"stepName":"s"}}');
SELECT workflow.event_create('wrun_e', '{"eventCount":"-1"}', '{"eventType":"run_started"}');
SELECT workflow.event_create('null', '{}', '{"eventType":"run_created","eventData":{"workflowName":"wf"}}');
SELECT workflow.event_create('null', '{}', '{"eventType":"run_created","specVersion":9,"eventData":{"deploymentId":"v1","workflowName":"wf"}}');
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"attr_set","eventData":{"changes":[{"key":"$secret","value":"x"}],"writer":{"type":"workflow"}}}');
SELECT workflow.runs_list('{"status":"sleeping"}');
SELECT workflow.events_list('wrun_e', '{"limit":"0"}');
-- Also 400, never an internal error: JSON nested past 128 levels, dates PostgreSQL cannot hold.
SELECT workflow.event_create('wrun_e', '{}', ('{"eventType":"run_completed","eventData":{"output":' || repeat('[', 200) || repeat(']', 200) || '}}')::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"wait_created","correlationId":"w9","eventData":{"resumeAt":-8000000000000000}}');
\echo :LAST_ERROR_SQLSTATE

-- 404
SELECT workflow.event_create('wrun_nope', '{}', '{"eventType":"run_completed"}');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"step_completed","correlationId":"step_x"}');
SELECT workflow.event_get('wrun_e', 'not-an-event-id');
SELECT workflow.hook_get_by_token('no-such-token');

-- 409
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"step_created","correlationId":"s1","eventData":{"stepName":"s"}}') IS NOT NULL AS step_created;
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"step_created","correlationId":"s1","eventData":{"stepName":"s"}}');

-- 425 carries the retry time as a JSON DETAIL
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"step_retrying","correlationId":"s1","eventData":{"retryAfter":"2099-01-01T00:00:00.000Z"}}') IS NOT NULL AS retrying;
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"step_started","correlationId":"s1"}');
\echo :LAST_ERROR_SQLSTATE

-- A terminal run: a late run_started answers the run with no event and appends nothing; other
-- run events are 409
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"run_failed","eventData":{"error":{"message":"boom"},"errorCode":"USER_ERROR"}}') -> 'run' ->> 'status' AS status;
SELECT count(*) AS events_before FROM workflow.events WHERE run_id = 'wrun_e';
SELECT r -> 'event' AS event, r -> 'run' ->> 'status' AS status
  FROM workflow.event_create('wrun_e', '{}', '{"eventType":"run_started"}') AS r;
SELECT count(*) AS events_after FROM workflow.events WHERE run_id = 'wrun_e';
SELECT workflow.event_create('wrun_e', '{}', '{"eventType":"run_cancelled"}');
\echo :LAST_ERROR_SQLSTATE

-- 429: the per-run event quota (terminal run events are exempt)
INSERT INTO workflow.quotas (application_id, max_events_per_run) SELECT application_id, 2 FROM workflow.applications WHERE label = 'default';
SELECT workflow.event_create('wrun_q', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf"}}') -> 'maxEvents' AS max_events;
SELECT workflow.event_create('wrun_q', '{}', '{"eventType":"run_started"}') -> 'event' ->> 'eventId' AS second;
SELECT workflow.event_create('wrun_q', '{}', '{"eventType":"wait_created","correlationId":"w","eventData":{"resumeAt":0}}');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.event_create('wrun_q', '{}', '{"eventType":"run_completed"}') -> 'event' ->> 'eventId' AS finished_anyway;
ROLLBACK;
