#!/usr/bin/env bash
# Benchmarks (README "Benchmarks"), on release builds and their own PostgreSQL 17 cluster
# (127.0.0.1:${PGWORLD_BENCH_PORT:-5498}), fresh database each run:
#   ./pgw bench [events|queue|all] [harness flags…]
#   events  event-append throughput beside a raw INSERT, and append cost deep into one run's log
#           (flags: --clients N --seconds S --deep EVENTS)
#   queue   the dispatcher: enqueue → receiver latency, sustained delivery rate, enqueue rate, RSS,
#           fairness between apps and versions, and the same sink driven by world-postgres's queue
#           (flags: --seconds S --backlog N --samples N --clients N --reader-seconds S --only delivery)
#   wdk     a WDK app's three-step workflow on @workflow/world-postgres and on @pgworld/world
#           (façade and direct SQL): runs/s and p50/p99 run latency
#           (flags: --runs N --concurrency C --only world-postgres|pgworld-http|pgworld-sql)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT="${PGWORLD_BENCH_PORT:-5498}"
DATA="$PGWORLD_HOME/bench/pgdata"
SUITE=all
if [[ $# -gt 0 && $1 != --* ]]; then
  SUITE=$1
  shift
fi
case "$SUITE" in events | queue | wdk | all) ;; *) die "unknown benchmark '$SUITE' (events, queue, wdk or all)" ;; esac
[[ $SUITE == all && $# -gt 0 ]] && die "harness flags need one benchmark: ./pgw bench events|queue|wdk FLAGS…"
bash "$REPO_ROOT/scripts/setup.sh"
use_installation bench
install_extension release
cluster_start "$DATA" "$PORT"
trap 'cluster_stop "$DATA"' EXIT
step "cargo build --release (benchmark harnesses and pgworld-dispatcher)"
(cd "$REPO_ROOT" && cargo build -q --release -p pgworld-it --bins -p pgworld-dispatcher)
fresh_db() {
  psql_at "$PORT" postgres -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" -c "CREATE DATABASE bench"
  pgworld_db "$PORT" bench
}
export PGWORLD_BENCH_URL="postgres://postgres@127.0.0.1:$PORT/bench"
if [[ $SUITE == events || $SUITE == all ]]; then
  fresh_db
  PGWORLD_DISPATCHER_BIN="$REPO_ROOT/target/release/pgworld-dispatcher" "$REPO_ROOT/target/release/pgworld-bench" "$@"
fi
if [[ $SUITE == queue || $SUITE == all ]]; then
  fresh_db
  # The comparison drives @workflow/world-postgres's queue from the e2e app's packages (Node 24).
  js_deps "$REPO_ROOT/tests/e2e-app" "$REPO_ROOT/world-js/src" "$REPO_ROOT/world-js/package.json"
  use_node24
  PGWORLD_WP_DRIVER="$REPO_ROOT/tests/e2e-app/queue-bench-world-postgres.mjs" \
    PGWORLD_DISPATCHER_BIN="$REPO_ROOT/target/release/pgworld-dispatcher" "$REPO_ROOT/target/release/pgworld-queue-bench" "$@"
fi
if [[ $SUITE == wdk || $SUITE == all ]]; then
  # Fresh databases per World, cloned from a template with the extension (as the tests do).
  pgworld_template "$PORT"
  js_deps "$REPO_ROOT/world-js"
  js_deps "$REPO_ROOT/tests/e2e-app" "$REPO_ROOT/world-js/src" "$REPO_ROOT/world-js/package.json"
  use_node24
  (cd "$REPO_ROOT/tests/e2e-app/v1" && npx workflow build >/dev/null)
  PGWORLD_TEST_URL="postgres://postgres@127.0.0.1:$PORT/postgres" \
    PGWORLD_DISPATCHER_BIN="$REPO_ROOT/target/release/pgworld-dispatcher" \
    node "$REPO_ROOT/tests/e2e-app/bench.mjs" "$@"
fi
