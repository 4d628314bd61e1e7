-- The queue from psql: handlers, enqueue, a dispatcher's claim and outcomes, dead letters,
-- draining counts and force-expire (queue.md, lifecycle.md).
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
BEGIN;
SET LOCAL workflow.app_id = 'default';
SET LOCAL workflow.admin = on;
SELECT workflow.handler_register('{"podId":"pod-1","deploymentVersion":"v1","endpoints":{"workflow":"http://pod-1/flow","step":"http://pod-1/step","webhook":"http://pod-1/hook"}}');
SELECT workflow.handler_register('{"podId":"pod-1","deploymentVersion":"v1","endpoints":{"workflow":"http://pod-1/flow","step":"pod-1/step","webhook":"http://pod-1/hook"}}');
SELECT workflow.event_create('wrun_q', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf"}}') ->> 'event' IS NOT NULL AS run_created;
SELECT workflow.event_create('wrun_q', '{}', '{"eventType":"run_started"}') -> 'run' ->> 'status' AS run;
-- Enqueue: due now, deferred, a duplicate key, and invalid envelopes.
SELECT workflow.queue_enqueue('{}', '{"queueName":"__wkf_workflow_wf","message":{"runId":"wrun_q"},"deploymentId":"v1","idempotencyKey":"k1"}');
SELECT show(workflow.queue_enqueue('{}', '{"queueName":"emails","message":{"to":"ops"},"deploymentId":"v1","delaySeconds":60}'));
SELECT workflow.queue_enqueue('{}', '{"queueName":"__wkf_workflow_wf","message":{"runId":"wrun_q"},"deploymentId":"v1","idempotencyKey":"k1"}');
SELECT workflow.queue_enqueue('{}', '{"queueName":"q"}');
SELECT workflow.queue_enqueue('{}', '{"queueName":"q","message":1,"delaySeconds":-5}');
SELECT id, state, kind, queue_name, run_id, deployment_version, attempts FROM workflow.messages ORDER BY id;
SELECT workflow.version_status('v1');
-- A dispatcher claims what is due and routable, then reports a failed delivery.
SELECT id, queue_name, kind, url, encoding, body_json, attempts FROM workflow.dispatch_claim('regress', 10, 60);
SELECT workflow.dispatch_complete(lease_id, '{"outcome":"failed","code":"HTTP_500","message":"handler answered HTTP 500","statusCode":500,"url":"http://user:pw@pod-1/flow?x=1"}')
  FROM workflow.messages WHERE state = 'leased';
SELECT id, state, attempts, available_at - updated_at AS retry_in FROM workflow.messages ORDER BY id;
SELECT show(last_failure) FROM workflow.message_bodies WHERE last_failure IS NOT NULL;
SELECT workflow.dispatch_complete('00000000-0000-0000-0000-000000000000', '{"outcome":"delivered"}') AS stale_lease;
-- Quotas and the version's retirement.
SELECT workflow.quotas_get();
SELECT workflow.quotas_put('{"maxQueuePerMinute": 500}');
SELECT workflow.quotas_put('{"maxRuns": 0}');
SELECT workflow.version_notify('{"applicationId":"default","deploymentVersion":"v1","status":"draining"}');
SELECT workflow.version_expire('v1');
SELECT workflow.version_status('v1');
SELECT workflow.version_notify('{"applicationId":"default","deploymentVersion":"v1","status":"active"}');
SELECT workflow.queue_enqueue('{}', '{"queueName":"q","message":1,"deploymentId":"v1"}');
SELECT workflow.run_get('wrun_q') ->> 'status' AS run;
SELECT show(d) FROM jsonb_array_elements(workflow.dead_letters_list('{"limit":"1"}') -> 'data') AS d;
SELECT workflow.dead_letters_list('{"limit":"1"}') - 'data' AS page;
SELECT workflow.dead_letter_retry('msg_2');
SELECT workflow.dead_letter_retry('nope');
ROLLBACK;
