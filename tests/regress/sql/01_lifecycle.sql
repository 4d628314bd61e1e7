-- A run from creation to completion through workflow.event_create, then every read.
\set SHOW_CONTEXT never
BEGIN;
SET LOCAL workflow.app_id = 'default';

-- The path id 'null' lets the server mint wrun_<ULID>.
SELECT jsonb_pretty(show(workflow.event_create('null', '{}',
  '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"order","input":"ZGV2bAE="}}')));

SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}',
  '{"eventType":"run_created","specVersion":7,"eventData":{"deploymentId":"v1","workflowName":"order","input":{"id":42},"attributes":{"team":"billing"}}}')));
SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}', '{"eventType":"run_started"}')));
-- Starting an already running run is an idempotent no-op: event null.
SELECT show(workflow.event_create('wrun_demo', '{}', '{"eventType":"run_started"}')) -> 'event' AS event;

-- A lazy step_started (stepName + input) creates the step with a synthetic step_created.
SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{"eventCount":"2"}',
  '{"eventType":"step_started","correlationId":"step_01","eventData":{"stepName":"charge","input":[1,2]}}')));
SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}',
  '{"eventType":"step_completed","correlationId":"step_01","eventData":{"result":{"ok":true}}}')));

-- A writer that believed the log had 1 event lands at the next free slot and gets the gap reported.
SELECT e ->> 'eventId' AS landed_at, jsonb_path_query_array(e, '$.events[*].eventId') AS reported, e -> 'hasMore' AS has_more
FROM (SELECT workflow.event_create('wrun_demo', '{"eventCount":"1"}',
  '{"eventType":"wait_created","correlationId":"wait_01","eventData":{"resumeAt":"2030-01-01T00:00:00.000Z"}}') AS r) s,
  LATERAL (SELECT r -> 'event' || jsonb_build_object('events', r -> 'events', 'hasMore', r -> 'hasMore') AS e) x;
SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}', '{"eventType":"wait_completed","correlationId":"wait_01"}') -> 'wait'));

SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}',
  '{"eventType":"hook_created","correlationId":"hook_01","eventData":{"token":"approve-42","metadata":{"by":"ops"},"isWebhook":true}}')));
SELECT show(workflow.event_create('wrun_demo', '{"resumeId":"r1","resumePayloadDigest":"d1"}',
  '{"eventType":"hook_received","correlationId":"hook_01","eventData":{"payload":{"approved":true}}}')) -> 'event' ->> 'eventId' AS received;
-- The same resumeId and digest again: the recorded event, nothing written.
SELECT show(workflow.event_create('wrun_demo', '{"resumeId":"r1","resumePayloadDigest":"d1"}',
  '{"eventType":"hook_received","correlationId":"hook_01","eventData":{"payload":{"approved":true}}}')) -> 'event' ->> 'eventId' AS replayed;

SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}',
  '{"eventType":"attr_set","correlationId":"attr_01","eventData":{"changes":[{"key":"stage","value":"paid"},{"key":"team","value":null}],"writer":{"type":"workflow"}}}') -> 'run' -> 'attributes'));

-- Completing the run disposes its live hooks (freeing tokens) without writing more events.
SELECT jsonb_pretty(show(workflow.event_create('wrun_demo', '{}', '{"eventType":"run_completed","eventData":{"output":{"total":99}}}')));

-- Reads.
SELECT jsonb_pretty(show(workflow.run_get('wrun_demo', '{"resolveData":"none"}')));
SELECT jsonb_pretty(show(workflow.steps_list('wrun_demo')));
SELECT jsonb_pretty(show(workflow.hook_get('hook_01', '{"runId":"wrun_demo"}')));
SELECT show(workflow.hooks_list('{"runId":"wrun_demo"}')) -> 'data' -> 0 ->> 'status' AS hook_status_after_completion;
SELECT jsonb_pretty(show(workflow.event_get('wrun_demo', 'evnt_00000000000000000000000003')));
SELECT e ->> 'eventId' AS event_id, e ->> 'eventType' AS type, e ->> 'correlationId' AS correlation, e -> 'eventData' AS data_without_payloads
FROM jsonb_array_elements(workflow.events_list('wrun_demo', '{"resolveData":"none"}') -> 'data') e;
SELECT show(workflow.events_list('wrun_demo', '{"limit":"2","sortOrder":"desc"}')) - 'data' AS page;
SELECT jsonb_path_query_array(workflow.events_by_correlation('{"correlationId":"step_01","runId":"wrun_demo"}'), '$.data[*].eventType') AS step_01_events;
SELECT count(*) AS runs FROM jsonb_array_elements(workflow.runs_list('{"workflowName":"order","status":"completed,pending"}') -> 'data');
ROLLBACK;
