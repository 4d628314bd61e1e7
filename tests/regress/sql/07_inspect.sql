-- Inspecting runs from psql: the overview views and run_trace(), in an app of their own.
SELECT workflow.app_provision('{"appId":"inspect"}') ->> 'appId' AS app;
BEGIN;
SET LOCAL workflow.app_id = 'inspect';
SELECT count(*) AS events FROM (VALUES
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v7","workflowName":"checkout"}}'))
) AS e;
SELECT count(*) AS events FROM (VALUES
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"run_started"}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_created","correlationId":"step_reserve","eventData":{"stepName":"reserveStock"}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_started","correlationId":"step_reserve"}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_completed","correlationId":"step_reserve","eventData":{"result":1}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"hook_created","correlationId":"hook_approve","eventData":{"token":"approve-order-17"}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"hook_received","correlationId":"hook_approve","eventData":{"payload":true}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_created","correlationId":"step_charge","eventData":{"stepName":"chargeCard"}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_started","correlationId":"step_charge"}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_retrying","correlationId":"step_charge","eventData":{"error":{"message":"card declined"}}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_started","correlationId":"step_charge"}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"step_completed","correlationId":"step_charge","eventData":{"result":2}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"wait_created","correlationId":"wait_cooloff","eventData":{"resumeAt":"2026-01-01T00:00:08Z"}}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"wait_completed","correlationId":"wait_cooloff"}')),
  (workflow.event_create('wrun_trace', '{}', '{"eventType":"run_completed","eventData":{"output":"shipped"}}'))
) AS e;
-- A second run, still going: one step running, a hook waiting, on another version.
SELECT count(*) AS events FROM (VALUES
  (workflow.event_create('wrun_trace_live', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v8","workflowName":"checkout"}}')),
  (workflow.event_create('wrun_trace_live', '{}', '{"eventType":"run_started"}')),
  (workflow.event_create('wrun_trace_live', '{}', '{"eventType":"hook_created","correlationId":"hook_approve","eventData":{"token":"approve-order-18"}}')),
  (workflow.event_create('wrun_trace_live', '{}', '{"eventType":"step_created","correlationId":"step_reserve","eventData":{"stepName":"reserveStock"}}')),
  (workflow.event_create('wrun_trace_live', '{}', '{"eventType":"step_started","correlationId":"step_reserve"}'))
) AS e;
SELECT workflow.handler_register('{"podId":"pod-v8","deploymentVersion":"v8","endpoints":{"workflow":"http://pod/flow","step":"http://pod/step","webhook":"http://pod/webhook"}}') ->> 'podId' AS pod;
SELECT workflow.queue_enqueue('{}', '{"queueName":"__wkf_workflow_checkout","message":{"runId":"wrun_trace_live"},"deploymentId":"v8"}') ? 'messageId' AS queued;
SELECT workflow.queue_enqueue('{}', '{"queueName":"__wkf_workflow_checkout","message":{"runId":"wrun_trace_live"},"deploymentId":"v8","delaySeconds":3600}') ? 'messageId' AS deferred;
COMMIT;

-- Fixed timestamps, so the waterfall below is the same on every run.
UPDATE workflow.runs SET created_at = '2026-01-01 00:00:00+00', started_at = '2026-01-01 00:00:00.050+00',
       completed_at = '2026-01-01 00:00:10+00' WHERE run_id = 'wrun_trace';
UPDATE workflow.steps SET created_at = '2026-01-01 00:00:00.100+00', started_at = '2026-01-01 00:00:00.100+00',
       completed_at = '2026-01-01 00:00:01.100+00' WHERE run_id = 'wrun_trace' AND step_id = 'step_reserve';
UPDATE workflow.hooks SET created_at = '2026-01-01 00:00:01.200+00', received_at = '2026-01-01 00:00:05.200+00'
 WHERE run_id = 'wrun_trace';
UPDATE workflow.steps SET created_at = '2026-01-01 00:00:05.300+00', started_at = '2026-01-01 00:00:05.300+00',
       completed_at = '2026-01-01 00:00:07.800+00' WHERE run_id = 'wrun_trace' AND step_id = 'step_charge';
UPDATE workflow.waits SET created_at = '2026-01-01 00:00:07.900+00', completed_at = '2026-01-01 00:00:09.900+00'
 WHERE run_id = 'wrun_trace';

BEGIN;
SET LOCAL workflow.app_id = 'inspect';
SELECT * FROM workflow.run_trace('wrun_trace');
SELECT * FROM workflow.run_trace('wrun_trace', 20);
SELECT run_id, workflow_name, status, version, duration, steps, steps_completed, steps_failed, steps_running,
       hooks_pending, waits_waiting, events, error_code
  FROM workflow.runs_overview ORDER BY run_id;
SELECT version, status, active_runs, pending_hooks, pending_waits, queued_messages, dead_messages, pods
  FROM workflow.versions_overview ORDER BY version;
-- The view's draining counts are the ones version_status() reports.
SELECT v.version, s ->> 'status' = v.status AND (s ->> 'activeRuns')::bigint = v.active_runs
       AND (s ->> 'pendingHooks')::bigint = v.pending_hooks AND (s ->> 'pendingWaits')::bigint = v.pending_waits
       AND (s ->> 'queuedMessages')::bigint = v.queued_messages AS agrees
  FROM workflow.versions_overview v, LATERAL workflow.version_status(v.version) s ORDER BY 1;
SELECT state, messages, due_now, unroutable, max_attempts, oldest_due_for IS NOT NULL AS has_due
  FROM workflow.queue_health ORDER BY state;
SELECT * FROM workflow.run_trace('wrun_missing');
ROLLBACK;

-- Another app sees none of it.
BEGIN;
SET LOCAL workflow.app_id = 'default';
SELECT count(*) AS visible FROM workflow.runs_overview WHERE run_id LIKE 'wrun_trace%';
SELECT * FROM workflow.run_trace('wrun_trace');
ROLLBACK;
