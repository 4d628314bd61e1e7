#!/usr/bin/env bash
# Runs every test tier, each with one job, against a real PostgreSQL 17 with the real extension:
#   scripts   the set-up scripts themselves (the PostgreSQL source fetch against loopback mirrors)
#   lint      cargo fmt --check, clippy -D warnings
#   unit      pure rules (pgworld-core) and the dispatcher's own units
#   pg_test   in-backend behaviour (cargo pgrx test)
#   regress   golden psql transcripts of the SQL API (pg_regress)
#   integration  several real sessions racing on one cluster, RLS, the dispatcher binary
#   wdk       @pgworld/world: type check, its own tests, the Workflow DevKit's conformance suite
#             in both transports, a real WDK app end to end (Node 24), and the WDK's web UI
#             on pgworld in Debian's Chromium
# Any failure stops the run with a non-zero exit. TIERS="unit regress" runs a subset.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEST_PORT="${PGWORLD_TEST_PORT:-5499}"
TEST_DATA="$PGWORLD_HOME/test/pgdata"
TIERS="${TIERS:-scripts lint unit pg_test regress integration wdk}"
export PGWORLD_TEST_URL="postgres://postgres@127.0.0.1:$TEST_PORT/postgres"
unset RUST_BACKTRACE

want() { [[ " $TIERS " == *" $1 "* ]]; }
LOGS="$REPO_ROOT/target/test-logs"
mkdir -p "$LOGS"

# logged NAME CMD…: runs CMD once, keeps its whole output in target/test-logs/NAME.log, shows
# the test-result lines, and fails the tier on a failing exit or on a run that executed no test.
logged() {
  local name=$1
  shift
  set +e
  "$@" >"$LOGS/$name.log" 2>&1
  local status=$?
  set -e
  grep -E "^test result|^(not )?ok [0-9]|FAILED|panicked|^error|^ +Test Files |^ +Tests |^ℹ (pass|fail) |^ +ℹ " "$LOGS/$name.log" | grep -v "^test result: ok. 0 passed" || true
  if ((status != 0)); then
    tail -n 60 "$LOGS/$name.log" >&2
    die "$name failed (exit $status; full log: $LOGS/$name.log)"
  fi
  grep -qE "^test result: ok\. [1-9]|^# All [1-9][0-9]* tests passed|^ok [0-9]|^ +Tests +[1-9][0-9]* passed|^ℹ pass [1-9]" "$LOGS/$name.log" ||
    die "$name ran no test"
}
declare -a SUMMARY=()
tier_done() { SUMMARY+=("$1: passed"); ok "$1 passed"; }

scripts_tier() {
  step "scripts: the PostgreSQL 17 source fetch against Debian-shaped mirrors on loopback"
  logged scripts bash "$REPO_ROOT/tests/scripts/pg17-source.test.sh"
  tier_done scripts
}

lint() {
  step "lint: cargo fmt --check"
  cargo fmt --all --check
  step "lint: cargo clippy -D warnings"
  cargo clippy -q --workspace --all-targets -- -D warnings
  tier_done lint
}

unit() {
  step "unit: cargo test (pgworld-core, pgworld-dispatcher units)"
  logged unit cargo test -p pgworld-core -p pgworld-dispatcher --bins --lib
  tier_done unit
}

pg_test() {
  step "pg_test: cargo pgrx test pg17 (cluster runs as $PG_USER)"
  local pgdata="$PGWORLD_HOME/pgrx-test"
  mkdir -p "$pgdata" && chown "$PG_USER" "$pgdata"
  logged pg_test env -C "$REPO_ROOT/extension" CARGO_PGRX_TEST_RUNAS="$PG_USER" CARGO_PGRX_TEST_PGDATA="$pgdata" \
    cargo pgrx test pg17
  tier_done pg_test
}

start_test_cluster() {
  install_extension debug
  # Durability is not under test here, and without it a checkpoint syncing the files of the
  # hundreds of databases the tests create can stall every commit for tens of seconds, which
  # turns timing-sensitive tests (lease renewal) into flakes.
  cluster_start "$TEST_DATA" "$TEST_PORT" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  trap 'cluster_stop "$TEST_DATA"' EXIT
  # Databases earlier runs left behind (a killed run, a failed test) go first.
  local leftovers
  leftovers=$(psql_at "$TEST_PORT" postgres -tAc "SELECT datname FROM pg_database WHERE datname ~ '^(it_|pgworld_wdk_|pgworld_e2e_|pgworld_sql_|pgworld_tokens_|bench_)'")
  for db in $leftovers; do psql_at "$TEST_PORT" postgres -qc "DROP DATABASE \"$db\" WITH (FORCE)"; done
  # Each test database is cloned from this template, so tests run in parallel on fresh state.
  pgworld_template "$TEST_PORT"
}

# run_regress DB OUT: the golden files against database DB, results in OUT.
run_regress() {
  local db=$1 out=$2 tests
  rm -rf "$out" && mkdir -p "$out"
  tests=$(cd "$REPO_ROOT/tests/regress/sql" && ls *.sql | sed 's/\.sql$//' | sort)
  # shellcheck disable=SC2086 # one argument per test name
  if ! "$PG_INSTALL/lib/postgresql/pgxs/src/test/regress/pg_regress" --use-existing --host=127.0.0.1 --port="$TEST_PORT" \
      --user=postgres --dbname="$db" --bindir="$PG_BIN" \
      --inputdir="$REPO_ROOT/tests/regress" --outputdir="$out" $tests | tee -a "$LOGS/regress.log"; then
    [[ -f "$out/regression.diffs" ]] && head -n 200 "$out/regression.diffs"
    die "regress tier failed on $db (diffs: $out/regression.diffs)"
  fi
}

regress() {
  step "regress: pg_regress golden files (tests/regress), on a fresh install and on 0.1.0 upgraded"
  : >"$LOGS/regress.log"
  psql_at "$TEST_PORT" postgres -c "DROP DATABASE IF EXISTS pgworld_regress" -c "CREATE DATABASE pgworld_regress TEMPLATE pgworld_template"
  run_regress pgworld_regress "$REPO_ROOT/target/regress"
  # The same transcripts on a database that started on the released 0.1.0 and was updated.
  psql_at "$TEST_PORT" postgres -c "DROP DATABASE IF EXISTS pgworld_regress_upgraded" -c "CREATE DATABASE pgworld_regress_upgraded"
  psql_at "$TEST_PORT" pgworld_regress_upgraded -c "CREATE EXTENSION pgworld VERSION '0.1.0'" -c "ALTER EXTENSION pgworld UPDATE"
  run_regress pgworld_regress_upgraded "$REPO_ROOT/target/regress-upgraded"
  [[ $(grep -cE "All [1-9][0-9]* tests passed|^# All" "$LOGS/regress.log") -eq 2 ]] || die "regress ran no test"
  tier_done regress
}

integration() {
  step "integration: multi-session tests against the cluster on :$TEST_PORT"
  cargo build -q -p pgworld-dispatcher
  logged integration cargo test -p pgworld-it -p pgworld-dispatcher --tests -- --test-threads=4
  tier_done integration
}

wdk() {
  step "wdk: @pgworld/world against the real dispatcher and database (Node 24)"
  js_deps "$REPO_ROOT/world-js"
  use_node24
  cargo build -q -p pgworld-dispatcher
  (cd "$REPO_ROOT/world-js" && npx tsc -p .) || die "wdk: type check failed"
  export PGWORLD_DISPATCHER_BIN="$REPO_ROOT/target/debug/pgworld-dispatcher"
  logged wdk env -C "$REPO_ROOT/world-js" NO_COLOR=1 npx vitest run --reporter=verbose

  step "wdk: a WDK 4.8 app end to end (built with workflow build)"
  local app="$REPO_ROOT/tests/e2e-app"
  js_deps "$app" "$REPO_ROOT/world-js/src" "$REPO_ROOT/world-js/package.json"
  for version in v1 v2; do
    (cd "$app/$version" && npx workflow build >"$LOGS/e2e-build-$version.log" 2>&1) ||
      die "workflow build of $version failed (log: $LOGS/e2e-build-$version.log)"
  done
  logged e2e env -C "$app" node --test --test-reporter=spec --test-concurrency=1 e2e.test.mjs

  step "wdk: the WDK web UI on pgworld in a real browser (Chromium; screenshots in target/web-ui)"
  chromium_browser
  logged web-ui env -C "$app" node --test --test-reporter=spec --test-concurrency=1 web-ui.test.mjs

  step "wdk: workflows started, resumed and read from SQL (psql, a trigger, Python) on the WDK 4.8 and 5 apps"
  python_env "$PGWORLD_HOME/test/python" "$REPO_ROOT/tests/python/requirements.txt"
  js_deps "$REPO_ROOT/tests/e2e-app5" "$REPO_ROOT/world-js/src" "$REPO_ROOT/world-js/package.json"
  # WDK 5 injects the World into its bundles when they are built.
  (cd "$REPO_ROOT/tests/e2e-app5/v1" && WORKFLOW_TARGET_WORLD=@pgworld/world npx workflow build >"$LOGS/e2e5-build.log" 2>&1) ||
    die "workflow build of the WDK 5 app failed (log: $LOGS/e2e5-build.log)"
  logged e2e-sql env -C "$app" node --test --test-reporter=spec --test-concurrency=1 sql.test.mjs
  tier_done wdk
}

# A `./pgw run` that is serving while the tests run must still serve afterwards: the tests use
# installations, clusters and ports of their own. Checked with an event write through its façade.
RUN_API_PORT=
note_running_run() {
  local pid_file="$PGWORLD_HOME/run/dispatcher.pid"
  [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null || return 0
  RUN_API_PORT=$(cat "$PGWORLD_HOME/run/api.port" 2>/dev/null || echo 3042)
  ok "./pgw run is serving on :$RUN_API_PORT; it is checked again after the tests"
}
check_run_still_serves() {
  [[ -n $RUN_API_PORT ]] || return 0
  local status
  status=$(curl -s -o "$LOGS/run-check.json" -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"eventType":"run_created","eventData":{"deploymentId":"pgw-test-check","workflowName":"still-serving"}}' \
    "http://127.0.0.1:$RUN_API_PORT/api/v1/apps/default/runs/null/events" || true)
  [[ $status == 200 ]] || die "./pgw run stopped serving during the tests (event write answered ${status:-nothing}: $(cat "$LOGS/run-check.json" 2>/dev/null))"
  ok "./pgw run still serves after the tests (event write answered 200)"
}

main() {
  note_running_run
  # The set-up first: it installs what every tier uses (gpg and curl for the scripts tier too).
  bash "$REPO_ROOT/scripts/setup.sh"
  want scripts && scripts_tier
  use_installation test
  # For tests that run a private cluster (restarting PostgreSQL under load).
  export PGWORLD_PG_BIN="$PG_BIN"
  cd "$REPO_ROOT"
  want lint && lint
  want unit && unit
  want pg_test && pg_test
  if want regress || want integration || want wdk; then
    start_test_cluster
    want regress && regress
    want integration && integration
    want wdk && wdk
  fi
  ((${#SUMMARY[@]})) || die "no test tier ran (TIERS=$TIERS)"
  check_run_still_serves
  echo
  printf '%s\n' "${SUMMARY[@]}"
  echo "tiers: ${#SUMMARY[@]} passed, 0 failed"
}
main "$@"
