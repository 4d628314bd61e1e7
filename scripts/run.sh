#!/usr/bin/env bash
# Runs pgworld locally: PostgreSQL 17 with the extension on 127.0.0.1:${PGWORLD_PG_PORT:-5434}
# (database `pgworld`) and pgworld-dispatcher on :${PORT:-3042}. Idempotent: a second run while
# both are up only reports how to reach them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${PGWORLD_PG_PORT:-5434}"
API_PORT="${PORT:-3042}"
RUN_DIR="$PGWORLD_HOME/run"
DATA="$RUN_DIR/pgdata"
DISPATCHER_PID="$RUN_DIR/dispatcher.pid"
DISPATCHER_LOG="$RUN_DIR/dispatcher.log"
DB_URL="postgres://pgworld_dispatcher@127.0.0.1:$PG_PORT/pgworld"

dispatcher_up() {
  [[ -f "$DISPATCHER_PID" ]] && kill -0 "$(cat "$DISPATCHER_PID")" 2>/dev/null
}

report() {
  cat <<MSG

pgworld is running.
  PostgreSQL 17   127.0.0.1:$PG_PORT, database pgworld (data: $DATA)
  dispatcher      http://127.0.0.1:$API_PORT/status (log: $DISPATCHER_LOG)

Connect with psql:
  $PG_BIN/psql -h 127.0.0.1 -p $PG_PORT -U postgres pgworld

Then, for example:
  SELECT workflow.event_create('null', '{}', '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"hello"}}');

Or over HTTP (the @platformatic/world protocol; single-tenant, app "default"):
  curl -s -X POST http://127.0.0.1:$API_PORT/api/v1/apps/default/runs/null/events \\
       -H 'content-type: application/json' \\
       -d '{"eventType":"run_created","eventData":{"deploymentId":"v1","workflowName":"hello"}}'
  curl -s http://127.0.0.1:$API_PORT/openapi.json     # every route

Stop everything:  ./pgw stop
MSG
}

# A database on an older released version is updated in place (ALTER EXTENSION … UPDATE). The
# version under development can still change under the same number; old SQL objects over a newer
# library can crash a backend, so a changed script of that version recreates the extension
# (dropping this local database's runs).
refresh_extension() {
  local version installed script stamp="$RUN_DIR/extension.sha256" now before
  version=$(awk -F"'" '/^default_version/ {print $2}' "$($PG_BIN/pg_config --sharedir)/extension/pgworld.control")
  installed=$(psql_at "$PG_PORT" pgworld -tAc "SELECT extversion FROM pg_extension WHERE extname = 'pgworld'")
  script="$($PG_BIN/pg_config --sharedir)/extension/pgworld--$version.sql"
  now=$(sha256sum <"$script" | cut -d' ' -f1)
  before=$(cat "$stamp" 2>/dev/null || true)
  if [[ -n $installed && $installed != "$version" ]]; then
    step "updating extension pgworld $installed → $version"
    psql_at "$PG_PORT" pgworld -c "ALTER EXTENSION pgworld UPDATE TO '$version'"
  elif [[ -n $installed && $before != "$now" ]]; then
    printf '\033[1;33mwarning:\033[0m the pgworld %s install script changed since this database was set up;\n' "$version"
    printf '         recreating the extension (local runs and events are dropped).\n'
    psql_at "$PG_PORT" pgworld -c "DROP EXTENSION pgworld CASCADE"
  fi
  echo "$now" >"$stamp"
}

main() {
  mkdir -p "$RUN_DIR"
  [[ -x "$RUN_DIR/pg17/bin/pg_ctl" ]] && PG_BIN="$RUN_DIR/pg17/bin"
  if dispatcher_up && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    ok "pgworld is already running"
    report
    return 0
  fi
  bash "$REPO_ROOT/scripts/setup.sh"
  use_installation run
  install_extension release
  step "cargo build --release -p pgworld-dispatcher"
  (cd "$REPO_ROOT" && cargo build --release -q -p pgworld-dispatcher)
  cluster_start "$DATA" "$PG_PORT"
  if ! psql_at "$PG_PORT" postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'pgworld'" | grep -q 1; then
    psql_at "$PG_PORT" postgres -c "CREATE DATABASE pgworld"
  fi
  refresh_extension
  psql_at "$PG_PORT" pgworld <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgworld;
-- The single-tenant app (the dispatcher would create it too; psql sessions use it at once).
DO $$ BEGIN PERFORM workflow.app_provision('{"appId":"default"}'); END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_dispatcher') THEN
    CREATE ROLE pgworld_dispatcher LOGIN IN ROLE pgworld_service;
  END IF;
END $$;
-- psql sessions act for the single-tenant app unless they say otherwise.
ALTER DATABASE pgworld SET workflow.app_id = 'default';
SQL
  ok "database pgworld has extension pgworld $(psql_at "$PG_PORT" pgworld -tAc "SELECT extversion FROM pg_extension WHERE extname = 'pgworld'")"
  if ! dispatcher_up; then
    step "starting pgworld-dispatcher on :$API_PORT"
    DATABASE_URL=$DB_URL nohup "$REPO_ROOT/target/release/pgworld-dispatcher" --port "$API_PORT" >>"$DISPATCHER_LOG" 2>&1 &
    echo $! >"$DISPATCHER_PID"
    echo "$API_PORT" >"$RUN_DIR/api.port"
    for _ in $(seq 50); do
      curl -fsS "http://127.0.0.1:$API_PORT/status" >/dev/null 2>&1 && break
      dispatcher_up || { tail -n 20 "$DISPATCHER_LOG" >&2; die "pgworld-dispatcher exited"; }
      sleep 0.2
    done
  fi
  report
}
main "$@"
