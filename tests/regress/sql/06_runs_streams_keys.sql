-- Run actions, streams and encryption keys from psql (http-api.md §4.4, §4.7, §4.10).
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
BEGIN;
SET LOCAL workflow.app_id = 'default';
SET LOCAL workflow.admin = on;
SELECT workflow.event_create('wrun_a', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf","input":{"n":1}}}') IS NOT NULL AS created;
SELECT workflow.event_create('wrun_a', '{}', '{"eventType":"run_started"}') -> 'run' ->> 'status' AS run;
SELECT workflow.event_create('wrun_a', '{}', '{"eventType":"wait_created","correlationId":"nap","eventData":{"resumeAt":"2099-01-01T00:00:00Z"}}') -> 'wait' ->> 'status' AS wait;
-- Wake-up completes the wait now and queues a continuation on the run's workflow queue.
SELECT workflow.run_wake_up('wrun_a');
SELECT queue_name, state, run_id FROM workflow.messages ORDER BY id;
SELECT show(workflow.run_replay('wrun_a')) - 'runId' AS replayed;
SELECT workflow.run_cancel('wrun_a', '{"cancelReason":"demo"}') ->> 'status' AS after_cancel;
SELECT workflow.run_cancel('wrun_a') ->> 'status' AS cancel_again;
SELECT workflow.run_cancel('wrun_missing');
SELECT workflow.workflow_template('wf');
-- Streams: single, multi (text and base64) and byte writes, then a close.
SELECT workflow.stream_put('wrun_a', 'out', '{}', '{"data":"aGVsbG8="}');
SELECT workflow.stream_put('wrun_a', 'out', '{"$multi":"true"}', '[" ", {"data":"world","type":"string"}]');
SELECT workflow.stream_put_bytes('wrun_a', 'out', '{}', '\x21');
SELECT workflow.stream_put('wrun_a', 'out', '{}', '{"bad":1}');
SELECT workflow.stream_put('wrun_a', 'out', '{"$done":"true"}', '{}');
SELECT workflow.stream_put('wrun_a', 'out', '{}', '"late"');
SELECT workflow.stream_state('out') - 'app' - 'channel' AS state, workflow.stream_info('wrun_a', 'out') AS info, workflow.streams_list('wrun_a') AS names;
SELECT idx, convert_from(data, 'UTF8') AS chunk FROM workflow.stream_read('out', 1, 10);
SELECT workflow.stream_chunks('wrun_a', 'out', '{"limit":"2"}');
-- Keys: HKDF-SHA256 of the app secret, salted with the run id (the spec's test vector).
SELECT workflow.app_secret_import('default', decode('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'));
SELECT workflow.encryption_key('{"runId":"wrun_01JABCDEFGHJKMNPQRSTVWXYZ0"}');
SELECT workflow.encryption_key('{}');
SELECT workflow.app_secret_import('default', '\x00');
SELECT workflow.app_secret_remove('default');
SELECT workflow.encryption_key('{"runId":"wrun_1"}');
ROLLBACK;
