#!/usr/bin/env bash
# Event-append benchmark (README "Benchmarks"): a release build of the extension on its own
# PostgreSQL 17 cluster (127.0.0.1:${PGWORLD_BENCH_PORT:-5498}), fresh database each run.
# Extra arguments go to the harness: --clients N --seconds S --deep EVENTS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT="${PGWORLD_BENCH_PORT:-5498}"
DATA="$PGWORLD_HOME/bench/pgdata"
bash "$REPO_ROOT/scripts/setup.sh"
install_extension release
cluster_start "$DATA" "$PORT"
trap 'cluster_stop "$DATA"' EXIT
psql_at "$PORT" postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
psql_at "$PORT" bench -c "CREATE EXTENSION pgworld"
step "cargo build --release -p pgworld-it --bin pgworld-bench"
(cd "$REPO_ROOT" && cargo build -q --release -p pgworld-it --bin pgworld-bench)
PGWORLD_BENCH_URL="postgres://postgres@127.0.0.1:$PORT/bench" "$REPO_ROOT/target/release/pgworld-bench" "$@"
