#!/usr/bin/env bash
# Stops the dispatcher and the PostgreSQL cluster that `./pgw run` started. Data is kept.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUN_DIR="$PGWORLD_HOME/run"
[[ -x "$RUN_DIR/pg17/bin/pg_ctl" ]] && PG_BIN="$RUN_DIR/pg17/bin"
if [[ -f "$RUN_DIR/dispatcher.pid" ]] && kill -0 "$(cat "$RUN_DIR/dispatcher.pid")" 2>/dev/null; then
  kill "$(cat "$RUN_DIR/dispatcher.pid")"
  ok "pgworld-dispatcher stopped"
fi
rm -f "$RUN_DIR/dispatcher.pid" "$RUN_DIR/api.port"
cluster_stop "$RUN_DIR/pgdata"
ok "PostgreSQL stopped (data kept in $RUN_DIR/pgdata)"
