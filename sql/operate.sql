-- pgworld v0.2.0: operating it from psql. Inspection views and run_trace(), and the run
-- retention settings. Loaded after queue.sql, before api.sql.
--
-- The views belong to pgworld_owner, so the tenant policies apply to every reader: they show the
-- app of the session (workflow.app_id for trusted roles, the mapped app for client roles).

-- One row per run: where it stands, and how much of it is done.
CREATE VIEW runs_overview AS
SELECT r.run_id,
       r.workflow_name,
       r.status,
       r.deployment_id AS version,
       r.created_at,
       date_trunc('second', now() - r.created_at) AS age,
       coalesce(r.completed_at, r.expired_at) - coalesce(r.started_at, r.created_at) AS duration,
       coalesce(s.steps, 0) AS steps,
       coalesce(s.completed, 0) AS steps_completed,
       coalesce(s.failed, 0) AS steps_failed,
       coalesce(s.running, 0) AS steps_running,
       (SELECT count(*) FROM workflow.hooks h
         WHERE h.application_id = r.application_id AND h.run_id = r.run_id AND h.status <> 'disposed') AS hooks_pending,
       (SELECT count(*) FROM workflow.waits w
         WHERE w.application_id = r.application_id AND w.run_id = r.run_id AND w.status = 'waiting') AS waits_waiting,
       r.event_count AS events,
       r.error_code
  FROM workflow.runs r
  LEFT JOIN LATERAL (
       SELECT count(*) AS steps,
              count(*) FILTER (WHERE st.status = 'completed') AS completed,
              count(*) FILTER (WHERE st.status = 'failed') AS failed,
              count(*) FILTER (WHERE st.status = 'running') AS running
         FROM workflow.steps st
        WHERE st.application_id = r.application_id AND st.run_id = r.run_id) s ON true;
COMMENT ON VIEW runs_overview IS 'Runs of the current app: status, workflow, version, age and step counts.';

-- The work a deployment version still holds: what draining waits for. One definition, read by
-- versions_overview and by version_status(), each count through a partial index of live rows.
CREATE FUNCTION _version_work(app integer, version text,
                              OUT active_runs bigint, OUT pending_hooks bigint,
                              OUT pending_waits bigint, OUT queued_messages bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  WITH active AS (SELECT r.run_id FROM workflow.runs r
                   WHERE r.application_id = app AND r.deployment_id = version AND r.status IN ('pending', 'running'))
  SELECT (SELECT count(*) FROM active),
         (SELECT count(*) FROM active a JOIN workflow.hooks h
            ON h.application_id = app AND h.run_id = a.run_id AND h.status <> 'disposed'),
         (SELECT count(*) FROM active a JOIN workflow.waits w
            ON w.application_id = app AND w.run_id = a.run_id AND w.status = 'waiting'),
         (SELECT count(*) FROM workflow.messages m
           WHERE m.application_id = app AND m.deployment_version = version
             AND m.state IN ('pending', 'deferred', 'retrying', 'leased'))
$$;

-- One row per deployment version: the work it still holds (what draining waits for) and its pods.
CREATE VIEW versions_overview AS
WITH versions AS (
       SELECT application_id, deployment_id AS version FROM workflow.runs
        UNION SELECT application_id, deployment_version FROM workflow.handlers
        UNION SELECT application_id, deployment_version FROM workflow.messages WHERE deployment_version <> ''
        UNION SELECT application_id, deployment_id FROM workflow.deployment_versions)
SELECT v.version,
       coalesce(d.status, 'active') AS status,
       work.active_runs,
       work.pending_hooks,
       work.pending_waits,
       work.queued_messages,
       (SELECT count(*) FROM workflow.messages m
         WHERE m.application_id = v.application_id AND m.deployment_version = v.version AND m.state = 'dead') AS dead_messages,
       (SELECT count(*) FROM workflow.handlers h
         WHERE h.application_id = v.application_id AND h.deployment_version = v.version) AS pods
  FROM versions v
  LEFT JOIN workflow.deployment_versions d ON d.application_id = v.application_id AND d.deployment_id = v.version
  CROSS JOIN LATERAL workflow._version_work(v.application_id, v.version) work;
COMMENT ON VIEW versions_overview IS 'Deployment versions of the current app: live work per version (the draining counts), dead letters and registered pods.';

-- The queue by state: how many, and how long the oldest has been due or waiting.
CREATE VIEW queue_health AS
SELECT m.state,
       count(*) AS messages,
       count(*) FILTER (WHERE m.state IN ('pending', 'deferred', 'retrying') AND m.available_at <= now()) AS due_now,
       min(m.available_at) FILTER (WHERE m.state IN ('pending', 'deferred', 'retrying')) AS oldest_available_at,
       date_trunc('second', now() - min(m.available_at) FILTER (WHERE m.state IN ('pending', 'deferred', 'retrying')
                                                                  AND m.available_at <= now())) AS oldest_due_for,
       count(*) FILTER (WHERE m.unroutable_since IS NOT NULL) AS unroutable,
       max(m.attempts) AS max_attempts
  FROM workflow.messages m
 GROUP BY m.state;
COMMENT ON VIEW queue_health IS 'Queue depth by state for the current app, the oldest due message, and unroutable messages (no pod for their version).';

-- A run's steps, hooks and waits as a text waterfall: when each started relative to the run,
-- how long it took, its attempts, and a bar on the run's timeline.
CREATE FUNCTION run_trace(run_id text, width integer DEFAULT 40) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r     workflow.runs;
  t0    timestamptz;
  t1    timestamptz;
  span  double precision;
  w     integer := greatest(10, least(coalesce(width, 40), 200));
  item  record;
  off   integer;
  len   integer;
BEGIN
  SELECT * INTO r FROM workflow.runs x WHERE x.run_id = run_trace.run_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'WF404', MESSAGE = format('Run %s not found', run_trace.run_id), HINT = 'WF_RUN_NOT_FOUND';
  END IF;
  t0 := r.created_at;
  t1 := coalesce(r.completed_at, r.expired_at, now());
  span := greatest(extract(epoch FROM t1 - t0), 0.001);
  RETURN NEXT format('run %s  %s  %s  version %s  spec %s', r.run_id, r.workflow_name, r.status, r.deployment_id, r.spec_version);
  RETURN NEXT format('created %s  took %s s  events %s%s',
                     to_char(t0 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                     to_char(extract(epoch FROM t1 - t0), 'FM999990.000'), r.event_count,
                     CASE WHEN r.error_code IS NOT NULL THEN '  error ' || r.error_code ELSE '' END);
  RETURN NEXT '';
  RETURN NEXT format('%-4s  %-28s  %-9s  %7s  %9s  %9s  %s', 'kind', 'name', 'status', 'attempt', 'start', 'duration', 'timeline');
  FOR item IN
    SELECT * FROM (
      SELECT 'step' AS kind, s.step_name AS name, s.status, s.attempt::text AS attempt,
             coalesce(s.started_at, s.created_at) AS s_at, s.completed_at AS e_at, s.created_slot AS ord
        FROM workflow.steps s WHERE s.application_id = r.application_id AND s.run_id = r.run_id
      UNION ALL
      SELECT 'hook', h.token, h.status, '', h.created_at, coalesce(h.received_at, h.disposed_at), h.hook_seq
        FROM workflow.hooks h WHERE h.application_id = r.application_id AND h.run_id = r.run_id
      UNION ALL
      SELECT 'wait', w.wait_id, w.status, '', w.created_at, w.completed_at, 0
        FROM workflow.waits w WHERE w.application_id = r.application_id AND w.run_id = r.run_id
    ) i ORDER BY i.s_at, i.kind, i.ord
  LOOP
    off := least(w - 1, greatest(0, floor(extract(epoch FROM item.s_at - t0) / span * w)::integer));
    len := least(w - off, greatest(1, ceil(extract(epoch FROM coalesce(item.e_at, t1) - item.s_at) / span * w)::integer));
    RETURN NEXT format('%-4s  %-28s  %-9s  %7s  %9s  %9s  |%s|',
      item.kind, left(item.name, 28), item.status, item.attempt,
      '+' || to_char(extract(epoch FROM item.s_at - t0), 'FM99990.000') || 's',
      CASE WHEN item.e_at IS NULL THEN 'open' ELSE to_char(extract(epoch FROM item.e_at - item.s_at), 'FM99990.000') || 's' END,
      repeat(' ', off) || repeat('#', len) || repeat(' ', w - off - len));
  END LOOP;
END
$$;
COMMENT ON FUNCTION run_trace(text, integer) IS 'A run''s steps, hooks and waits as a text waterfall: offset from the run''s start, duration, attempts, timeline bar.';

DO $own$
DECLARE
  v text;
BEGIN
  FOREACH v IN ARRAY ARRAY['runs_overview', 'versions_overview', 'queue_health'] LOOP
    -- Owned by the table owner, so the tenant policies filter what the view reads.
    EXECUTE format('ALTER VIEW workflow.%I OWNER TO pgworld_owner', v);
    EXECUTE format('GRANT SELECT ON workflow.%I TO pgworld_service, pgworld_client, pgworld_admin', v);
  END LOOP;
END
$own$;
GRANT EXECUTE ON FUNCTION run_trace(text, integer) TO pgworld_service, pgworld_client, pgworld_admin;
