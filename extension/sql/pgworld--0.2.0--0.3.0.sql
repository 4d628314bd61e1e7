-- pgworld 0.2.0 → 0.3.0 (ALTER EXTENSION pgworld UPDATE TO '0.3.0').
-- Released scripts are never edited; the upgrade test checks that 0.1.0 plus the upgrade scripts
-- give the same catalog as a fresh 0.3.0 install.
\echo Use "ALTER EXTENSION pgworld UPDATE TO '0.3.0'" to load this file. \quit

-- The row enqueues lock to share their NOTIFY pings (a lock no client role can take), and the key
-- that makes live-stream pings opaque: a ping carries HMAC(key, app id:stream name), never the name
-- or the app, since any role may LISTEN. Not in backups: a restored database makes its own key.
CREATE TABLE notify_gate (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    stream_key bytea NOT NULL CHECK (length(stream_key) = 32)
);
INSERT INTO notify_gate (stream_key)
VALUES (sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')));
ALTER TABLE notify_gate OWNER TO pgworld_owner;
REVOKE ALL ON notify_gate FROM PUBLIC;

-- Logical backups: pg_dump and pg_restore carry every tenant row and the identity counters.
-- Existing databases keep their apps (a fresh 0.3.0 install creates none).
DO $dump$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['applications', 'app_secrets', 'app_roles', 'quotas', 'run_counters',
                           'deployment_versions', 'runs', 'events', 'steps', 'hooks', 'waits',
                           'handlers', 'messages', 'message_bodies', 'queue_rate', 'streams',
                           'stream_chunks', 'k8s_bindings'] LOOP
    PERFORM pg_catalog.pg_extension_config_dump(format('workflow.%I', t)::regclass, '');
  END LOOP;
  FOR t IN SELECT pg_catalog.pg_get_serial_sequence(format('workflow.%I', c.relname), a.attname)
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'workflow'::regnamespace AND a.attidentity <> '' ORDER BY 1 LOOP
    PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
  END LOOP;
END
$dump$;
