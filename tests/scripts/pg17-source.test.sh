#!/usr/bin/env bash
# scripts/pg17-source.sh against Debian-shaped mirrors on loopback, served by a real HTTP server
# and read by the real apt with a signed index. Each scenario gets its own mirror: pool files,
# a Sources index and its InRelease, signed by a key made for this test (or by a stranger's).
# Prints TAP.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FETCH="$REPO_ROOT/scripts/pg17-source.sh"
WORK=$(mktemp -d /tmp/pgworld-pg17-source.XXXXXX)
# apt reads the keyring and writes its lists as the unprivileged _apt user.
chmod 755 "$WORK"
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
[[ -n ${KEEP:-} ]] && trap - EXIT

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$WORK/last.err" || true; }

# Two keys: the archive's (trusted by the fetch) and a stranger's.
export GNUPGHOME="$WORK/gnupg"
mkdir -m 700 "$GNUPGHOME"
for who in archive stranger; do
  gpg --batch --quiet --passphrase '' --quick-gen-key "pgworld test $who <$who@pgworld.invalid>" ed25519 sign never 2>/dev/null
  gpg --batch --quiet --export "$who@pgworld.invalid" >"$WORK/$who.gpg"
done
chmod 644 "$WORK"/*.gpg

# source_files DIR VERSION: a small fake source package (orig, debian tarball, .dsc) in DIR.
source_files() {
  local dir=$1 version=$2 upstream=${2%%-*} tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/postgresql-$upstream" "$tmp/debian" "$dir"
  echo "PostgreSQL $upstream" >"$tmp/postgresql-$upstream/README"
  tar -C "$tmp" -cjf "$dir/postgresql-17_$upstream.orig.tar.bz2" "postgresql-$upstream"
  echo "packaging $version" >"$tmp/debian/changelog"
  tar -C "$tmp" -cJf "$dir/postgresql-17_$version.debian.tar.xz" debian
  rm -rf "$tmp"
  {
    echo "Format: 3.0 (quilt)"
    echo "Source: postgresql-17"
    echo "Version: $version"
    echo "Checksums-Sha256:"
    for f in "postgresql-17_$upstream.orig.tar.bz2" "postgresql-17_$version.debian.tar.xz"; do
      echo " $(sha256sum "$dir/$f" | cut -d' ' -f1) $(stat -c %s "$dir/$f") $f"
    done
  } >"$dir/postgresql-17_$version.dsc"
}

# pins_for FILE DIR VERSION…: a pins file for the packages of VERSION… as they are in DIR.
pins_for() {
  local out=$1 dir=$2 version
  shift 2
  echo "# test pins" >"$out"
  for version in "$@"; do
    for f in "postgresql-17_$version.dsc" "postgresql-17_${version%%-*}.orig.tar.bz2" "postgresql-17_$version.debian.tar.xz"; do
      echo "$version $f $(sha256sum "$dir/$f" | cut -d' ' -f1)" >>"$out"
    done
  done
}

# mirror NAME INDEX_VERSION SIGNER: a signed index listing INDEX_VERSION (from $WORK/pkgs).
# Pool files are added per scenario.
mirror() {
  local root="$WORK/www/$1" version=$2 signer=$3 dists pkgs="$WORK/pkgs"
  dists="$root/dists/trixie"
  mkdir -p "$dists/main/source" "$root/pool/main/p/postgresql-17"
  {
    echo "Package: postgresql-17"
    echo "Binary: postgresql-17"
    echo "Version: $version"
    echo "Format: 3.0 (quilt)"
    echo "Directory: pool/main/p/postgresql-17"
    echo "Checksums-Sha256:"
    for f in "postgresql-17_$version.dsc" "postgresql-17_${version%%-*}.orig.tar.bz2" "postgresql-17_$version.debian.tar.xz"; do
      echo " $(sha256sum "$pkgs/$f" | cut -d' ' -f1) $(stat -c %s "$pkgs/$f") $f"
    done
    echo
  } >"$dists/main/source/Sources"
  gzip -k9n "$dists/main/source/Sources"
  {
    echo "Origin: Debian"
    echo "Suite: trixie"
    echo "Codename: trixie"
    echo "Date: $(date -Ru)"
    echo "Components: main"
    echo "Architectures: amd64 source"
    echo "SHA256:"
    for f in main/source/Sources main/source/Sources.gz; do
      echo " $(sha256sum "$dists/$f" | cut -d' ' -f1) $(stat -c %s "$dists/$f") $f"
    done
  } >"$dists/Release"
  gpg --batch --quiet --yes --local-user "$signer@pgworld.invalid" --clearsign -o "$dists/InRelease" "$dists/Release"
}
pool() { cp "$WORK/pkgs/postgresql-17_$2"* "$WORK/pkgs/postgresql-17_${2%%-*}.orig"* "$WORK/www/$1/pool/main/p/postgresql-17/"; }

# run_fetch MIRROR_NAME PINS DEST: the fetch script as setup.sh runs it, output kept.
run_fetch() {
  PGWORLD_DEBIAN_MIRROR="http://127.0.0.1:$PORT/$1" PGWORLD_PG17_PINS=$2 PGWORLD_APT_KEYRING="$WORK/archive.gpg" \
    bash "$FETCH" "$3" >"$WORK/last.out" 2>"$WORK/last.err"
}

mkdir -p "$WORK/pkgs" "$WORK/www"
source_files "$WORK/pkgs" 17.11-0+deb13u1
source_files "$WORK/pkgs" 17.12-0+deb13u1
pins_for "$WORK/pins" "$WORK/pkgs" 17.11-0+deb13u1

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$PORT" >"$WORK/http.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done

# 1. Today's archive: the index names 17.12, the pool still serves only the pinned 17.11.
mirror ahead 17.12-0+deb13u1 archive
pool ahead 17.11-0+deb13u1
if run_fetch ahead "$WORK/pins" "$WORK/d1" && [[ $(cat "$WORK/last.out") == "$WORK/d1/postgresql-17_17.11.orig.tar.bz2" ]] &&
  cmp -s "$WORK/d1/postgresql-17_17.11.orig.tar.bz2" "$WORK/pkgs/postgresql-17_17.11.orig.tar.bz2" &&
  [[ $(cat "$WORK/d1/SELECTED") == 17.11-0+deb13u1 ]] && ! grep -q 17.12 "$WORK/http.log"; then
  pass "index ahead of the pool: the pinned version comes straight from the pool, the index is not consulted"
else fail "index ahead of the pool"; fi

# 2. The same cache again with no mirror at all: verified from disk, no network.
if PGWORLD_DEBIAN_MIRROR="http://127.0.0.1:1/none" PGWORLD_PG17_PINS="$WORK/pins" bash "$FETCH" "$WORK/d1" >"$WORK/last.out" 2>"$WORK/last.err" &&
  [[ $(cat "$WORK/last.out") == "$WORK/d1/postgresql-17_17.11.orig.tar.bz2" ]]; then
  pass "a verified cache needs no network"
else fail "a verified cache needs no network"; fi

# 3. A cache whose tarball was damaged is fetched again, not trusted.
echo garbage >>"$WORK/d1/postgresql-17_17.11.orig.tar.bz2"
if run_fetch ahead "$WORK/pins" "$WORK/d1" && cmp -s "$WORK/d1/postgresql-17_17.11.orig.tar.bz2" "$WORK/pkgs/postgresql-17_17.11.orig.tar.bz2"; then
  pass "a damaged cache is replaced by verified files"
else fail "a damaged cache is replaced by verified files"; fi

# 4. The pool dropped the pinned version; the index's version is served: the index is the fallback.
mirror moved 17.12-0+deb13u1 archive
pool moved 17.12-0+deb13u1
if run_fetch moved "$WORK/pins" "$WORK/d4" && [[ $(cat "$WORK/last.out") == "$WORK/d4/postgresql-17_17.12.orig.tar.bz2" ]] &&
  [[ $(cat "$WORK/d4/SELECTED") == 17.12-0+deb13u1 ]] && grep -q "index of trixie" "$WORK/last.err"; then
  pass "pinned version gone from the pool: the signed index's version is fetched and verified"
else fail "pinned version gone from the pool"; fi

# 5. Nothing usable: a pinned file altered on the mirror, the index's version missing.
mirror broken 17.12-0+deb13u1 archive
pool broken 17.11-0+deb13u1
echo tampered >>"$WORK/www/broken/pool/main/p/postgresql-17/postgresql-17_17.11.orig.tar.bz2"
if ! run_fetch broken "$WORK/pins" "$WORK/d5" &&
  grep -q "broken/pool/main/p/postgresql-17/postgresql-17_17.11.orig.tar.bz2: SHA-256 .* does not match the pin" "$WORK/last.err" &&
  grep -q "broken/pool/main/p/postgresql-17/postgresql-17_17.12-0+deb13u1.dsc: HTTP 404" "$WORK/last.err" &&
  ! compgen -G "$WORK/d5/postgresql-17_*" >/dev/null; then
  pass "nothing verifiable: a clear error naming every URL tried, nothing left in the cache"
else fail "nothing verifiable"; fi

# 6. The index's files do not match the signed index.
mirror forged 17.12-0+deb13u1 archive
pool forged 17.12-0+deb13u1
echo tampered >>"$WORK/www/forged/pool/main/p/postgresql-17/postgresql-17_17.12.orig.tar.bz2"
echo "# none" >"$WORK/pins-none"
if ! run_fetch forged "$WORK/pins-none" "$WORK/d6" && grep -q "17.12.orig.tar.bz2: SHA-256 .* does not match the signed index" "$WORK/last.err" &&
  ! compgen -G "$WORK/d6/postgresql-17_*" >/dev/null; then
  pass "a file that does not match the signed index is refused"
else fail "a file that does not match the signed index is refused"; fi

# 7. An index signed by a key the fetch does not trust is not used at all.
mirror stranger 17.12-0+deb13u1 stranger
pool stranger 17.12-0+deb13u1
if ! run_fetch stranger "$WORK/pins-none" "$WORK/d7" && grep -q "stranger/dists/trixie (signed index)" "$WORK/last.err" &&
  ! grep -q "stranger/pool" "$WORK/http.log"; then
  pass "an index with an untrusted signature is not used"
else fail "an index with an untrusted signature is not used"; fi

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
((failed == 0))
