#!/usr/bin/env bash
# Benchmarks (README "Benchmarks"), on release builds and their own PostgreSQL 17 cluster
# (127.0.0.1:${PGWORLD_BENCH_PORT:-5498}), fresh database each run:
#   ./pgw bench [events|queue|all] [harness flags…]
#   events  event-append throughput beside a raw INSERT, and append cost deep into one run's log
#           (flags: --clients N --seconds S --deep EVENTS)
#   queue   the dispatcher: enqueue → receiver latency, sustained delivery rate, enqueue rate, RSS
#           (flags: --seconds S --backlog N --samples N --clients N)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT="${PGWORLD_BENCH_PORT:-5498}"
DATA="$PGWORLD_HOME/bench/pgdata"
SUITE=all
if [[ $# -gt 0 && $1 != --* ]]; then
  SUITE=$1
  shift
fi
case "$SUITE" in events | queue | all) ;; *) die "unknown benchmark '$SUITE' (events, queue or all)" ;; esac
[[ $SUITE == all && $# -gt 0 ]] && die "harness flags need one benchmark: ./pgw bench events|queue FLAGS…"
bash "$REPO_ROOT/scripts/setup.sh"
install_extension release
cluster_start "$DATA" "$PORT"
trap 'cluster_stop "$DATA"' EXIT
step "cargo build --release (benchmark harnesses and pgworld-dispatcher)"
(cd "$REPO_ROOT" && cargo build -q --release -p pgworld-it --bins -p pgworld-dispatcher)
fresh_db() {
  psql_at "$PORT" postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
  psql_at "$PORT" bench -c "CREATE EXTENSION pgworld"
}
export PGWORLD_BENCH_URL="postgres://postgres@127.0.0.1:$PORT/bench"
if [[ $SUITE == events || $SUITE == all ]]; then
  fresh_db
  PGWORLD_DISPATCHER_BIN="$REPO_ROOT/target/release/pgworld-dispatcher" "$REPO_ROOT/target/release/pgworld-bench" "$@"
fi
if [[ $SUITE == queue || $SUITE == all ]]; then
  fresh_db
  PGWORLD_DISPATCHER_BIN="$REPO_ROOT/target/release/pgworld-dispatcher" "$REPO_ROOT/target/release/pgworld-queue-bench" "$@"
fi
