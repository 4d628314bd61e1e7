-- Apps and direct-SQL role mappings (admin).
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
BEGIN;
SELECT workflow.app_provision('{"appId":"shop"}');
SELECT workflow.app_provision('{"appId":"shop"}');
SELECT workflow.app_provision('{}');
SELECT workflow.app_provision('{"appId":"no spaces"}');
SELECT label, length(s.secret) AS secret_bytes FROM workflow.applications a JOIN workflow.app_secrets s USING (application_id) ORDER BY label;
CREATE ROLE regress_shop_client LOGIN IN ROLE pgworld_client;
CREATE ROLE regress_outsider LOGIN;
SELECT workflow.app_role_grant('shop', 'regress_shop_client');
SELECT workflow.app_role_grant('shop', 'regress_outsider');
SELECT workflow.app_role_grant('ghost', 'regress_shop_client');
SET LOCAL ROLE regress_shop_client;
SELECT workflow.event_create('wrun_s', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"wf"}}') -> 'run' ->> 'runId' AS run_in_shop;
SELECT jsonb_array_length(workflow.runs_list() -> 'data') AS shop_runs;
SELECT workflow.app_provision('{"appId":"mine"}');
RESET ROLE;
SET LOCAL workflow.app_id = 'default';
SELECT jsonb_array_length(workflow.runs_list() -> 'data') AS default_runs;
SELECT workflow.app_role_revoke('regress_shop_client');
ROLLBACK;
