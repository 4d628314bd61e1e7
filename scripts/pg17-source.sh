#!/usr/bin/env bash
# Leaves a verified PostgreSQL 17 source package in DEST and prints the path of its .orig tarball.
#   scripts/pg17-source.sh DEST
# Order: what DEST already holds (re-verified), then each version pinned in scripts/pg17.pins
# straight from the archive's pool, then whatever the archive's signed index lists. Debian's index
# can name a version before the pool serves it, so the index alone is not enough; pins alone go
# stale once the pool drops them. Every file is checked by SHA-256 either way: pinned files
# against the pins, index files against the index (whose signature apt verifies), and the
# tarballs against their .dsc. Nothing unverified is ever left in DEST.
# Settings (tests point them at a loopback mirror): PGWORLD_DEBIAN_MIRROR, PGWORLD_PG17_PINS,
# PGWORLD_PG17_SUITE, PGWORLD_APT_KEYRING.
set -euo pipefail

DEST=${1:?usage: pg17-source.sh DEST}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PINS=${PGWORLD_PG17_PINS:-$HERE/pg17.pins}
SUITE=${PGWORLD_PG17_SUITE:-trixie}
KEYRING=${PGWORLD_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
POOL_DIR=pool/main/p/postgresql-17
STAGE="$DEST/.staging"
TRIED=() # "URL: outcome" of every download that failed, for the final error

say() { printf ' .. %s\n' "$*" >&2; }

debian_mirror() {
  local uri=${PGWORLD_DEBIAN_MIRROR:-}
  if [[ -z $uri ]]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  fi
  uri=${uri:-http://deb.debian.org/debian}
  echo "${uri%/}"
}
MIRROR=$(debian_mirror)

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch URL OUT: downloads through OUT.part and renames, so a cut transfer never looks complete.
fetch() {
  local url=$1 out=$2 code
  code=$(curl -sS -L --connect-timeout 10 --max-time 900 --retry 2 --retry-delay 1 \
    -o "$out.part" -w '%{http_code}' "$url" 2>/dev/null) || true
  if [[ $code == 200 ]]; then
    mv "$out.part" "$out"
    return 0
  fi
  rm -f "$out.part"
  [[ -z $code || $code == 000 ]] && code="no answer" || code="HTTP $code"
  TRIED+=("$url: $code")
  return 1
}

# fetch_verified URL OUT SHA256 SOURCE: fetch, then refuse a file whose checksum is not SOURCE's.
fetch_verified() {
  local url=$1 out=$2 want=$3 source=$4 got
  fetch "$url" "$out" || return 1
  got=$(sha_of "$out")
  if [[ $got != "$want" ]]; then
    rm -f "$out"
    TRIED+=("$url: SHA-256 $got does not match $source ($want)")
    return 1
  fi
}

# dsc_checksums FILE: "sha256 name" for every file named under Checksums-Sha256 (a .dsc, or an
# index stanza).
dsc_checksums() {
  awk '/^Checksums-Sha256:/ {on = 1; next} on && /^ / {print $1, $3; next} on {exit}' "$1"
}

# matches_dsc DIR DSC: every file DSC names is in DIR with the checksum DSC gives.
matches_dsc() {
  local dir=$1 dsc=$2 sha name n=0
  while read -r sha name; do
    [[ -f "$dir/$name" && $(sha_of "$dir/$name") == "$sha" ]] || return 1
    n=$((n + 1))
  done < <(dsc_checksums "$dsc")
  ((n > 0))
}

orig_of() { dsc_checksums "$1" | awk '$2 ~ /\.orig\.tar\./ {print $2; exit}'; }

pinned_versions() { awk '!/^#/ && NF == 3 && !seen[$1]++ {print $1}' "$PINS"; }
pinned_files() { awk -v v="$1" '!/^#/ && $1 == v {print $2, $3}' "$PINS"; }
pinned_sha() { awk -v v="$1" -v f="$2" '!/^#/ && $1 == v && $2 == f {print $3}' "$PINS"; }
dsc_name() { echo "postgresql-17_$1.dsc"; }

# publish VERSION: moves the staged, verified files into DEST and records the choice.
publish() {
  local version=$1 dsc
  dsc="$STAGE/$(dsc_name "$version")"
  matches_dsc "$STAGE" "$dsc" || {
    TRIED+=("$(dsc_name "$version"): the tarballs do not match the checksums in the .dsc")
    return 1
  }
  find "$DEST" -maxdepth 1 -type f -name 'postgresql-17_*' -delete
  mv "$STAGE"/postgresql-17_* "$DEST/"
  echo "$version" >"$DEST/SELECTED"
  rm -rf "$STAGE"
  echo "$DEST/$(orig_of "$DEST/$(dsc_name "$version")")"
}

from_cache() {
  local version dsc pin
  [[ -f "$DEST/SELECTED" ]] || return 1
  version=$(cat "$DEST/SELECTED")
  dsc="$DEST/$(dsc_name "$version")"
  [[ -f $dsc ]] || return 1
  pin=$(pinned_sha "$version" "$(dsc_name "$version")")
  [[ -z $pin || $(sha_of "$dsc") == "$pin" ]] || return 1
  matches_dsc "$DEST" "$dsc" || return 1
  say "PostgreSQL $version source in $DEST (verified)"
  echo "$DEST/$(orig_of "$dsc")"
}

from_pins() {
  local version name sha ok
  for version in $(pinned_versions); do
    rm -rf "$STAGE" && mkdir -p "$STAGE"
    ok=1
    while read -r name sha; do
      fetch_verified "$MIRROR/$POOL_DIR/$name" "$STAGE/$name" "$sha" "the pin in $(basename "$PINS")" || {
        ok=0
        break
      }
    done < <(pinned_files "$version")
    if ((ok)) && publish "$version"; then
      say "PostgreSQL $version source (pinned) from $MIRROR/$POOL_DIR"
      return 0
    fi
  done
  return 1
}

# from_index: the version the archive's signed Sources index lists, with its checksums.
from_index() {
  local apt="$DEST/.apt" opts stanza version dir sha name
  rm -rf "$apt" && mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial"
  cat >"$apt/sources/pg17.sources" <<SRC
Types: deb-src
URIs: $MIRROR
Suites: $SUITE
Components: main
Signed-By: $KEYRING
SRC
  opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1)
  if ! apt-get "${opts[@]}" update -qq >"$apt/update.log" 2>&1 || grep -qE '^(E:|W: GPG error)' "$apt/update.log"; then
    TRIED+=("$MIRROR/dists/$SUITE (signed index): $(grep -E '^(E:|W: GPG error)' "$apt/update.log" | head -n1 || echo 'apt-get update failed')")
    return 1
  fi
  stanza=$(apt-cache "${opts[@]}" showsrc --only-source postgresql-17 2>/dev/null | awk 'NF == 0 {exit} {print}')
  version=$(awk '/^Version:/ {print $2; exit}' <<<"$stanza")
  dir=$(awk '/^Directory:/ {print $2; exit}' <<<"$stanza")
  if [[ -z $version || -z $dir ]]; then
    TRIED+=("$MIRROR/dists/$SUITE (signed index): lists no postgresql-17 source")
    return 1
  fi
  rm -rf "$STAGE" && mkdir -p "$STAGE"
  while read -r sha name; do
    fetch_verified "$MIRROR/$dir/$name" "$STAGE/$name" "$sha" "the signed index" || return 1
  done < <(dsc_checksums /dev/stdin <<<"$stanza")
  publish "$version" || return 1
  say "PostgreSQL $version source (index of $SUITE) from $MIRROR/$dir"
}

main() {
  mkdir -p "$DEST"
  from_cache && return 0
  from_pins && return 0
  say "no pinned version could be fetched; trying the version the $SUITE index lists"
  from_index && return 0
  rm -rf "$STAGE"
  {
    printf 'error: no verified PostgreSQL 17 source package could be fetched. Tried:\n'
    printf '  %s\n' "${TRIED[@]}"
    printf 'Pinned versions (%s): %s. Add a version the archive serves to that file, or set\n' \
      "$PINS" "$(pinned_versions | tr '\n' ' ')"
    printf 'PGWORLD_DEBIAN_MIRROR to a mirror that still has one.\n'
  } >&2
  return 1
}
main
