-- Byte payloads stay bytes: compat mode (base64 strings) and envelope mode ("$payload":"envelope").
\set SHOW_CONTEXT never
BEGIN;
SET LOCAL workflow.app_id = 'default';
-- Envelope mode stores bytes; a plain string stays a string.
SELECT workflow.event_create('wrun_p', '{"$payload":"envelope"}',
  '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf","input":{"__type":"Uint8Array","data":"ZGV2bAABAg=="}}}') IS NOT NULL AS created;
SELECT workflow.event_create('wrun_p', '{"$payload":"envelope"}', '{"eventType":"run_started"}') IS NOT NULL AS started;
SELECT workflow.event_create('wrun_p', '{"$payload":"envelope"}', '{"eventType":"run_completed","eventData":{"output":"test"}}') IS NOT NULL AS completed;
-- How it is stored, as psql shows the table:
SELECT input, output FROM workflow.runs WHERE run_id = 'wrun_p';
-- The same run read back in each mode.
SELECT workflow.run_get('wrun_p', '{"$payload":"envelope"}') -> 'input' AS envelope_input,
       workflow.run_get('wrun_p', '{"$payload":"envelope"}') -> 'output' AS envelope_output;
SELECT workflow.run_get('wrun_p') -> 'input' AS compat_input, workflow.run_get('wrun_p') -> 'output' AS compat_output;
-- Compat mode: a canonical base64 string becomes bytes; anything else is JSON.
SELECT workflow.event_create('wrun_c', '{}',
  '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf","input":"AAEC"}}') IS NOT NULL AS created;
SELECT input FROM workflow.runs WHERE run_id = 'wrun_c';
SELECT workflow.run_get('wrun_c', '{"$payload":"envelope"}') -> 'input' AS as_envelope;
-- A JSON value shaped like the internal tag is escaped, so it reads back unchanged.
SELECT workflow.event_create('wrun_t', '{"$payload":"envelope"}',
  '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf","input":{"$bytes":"AAEC"}}}') IS NOT NULL AS created;
SELECT input AS stored, workflow.run_get('wrun_t', '{"$payload":"envelope"}') -> 'input' AS read_back FROM workflow.runs WHERE run_id = 'wrun_t';
ROLLBACK;
