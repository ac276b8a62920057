#!/usr/bin/env bash
# The .deb as an operator uses it: build it with CPack from BUILD_DIR, install it with dpkg,
# run the installed binaries (version, the packaged quickstart config, a function made with
# `wasmlet new` against the installed SDK and served), remove it (only the config stays), purge
# it (nothing stays). Needs root and dpkg; exits 77 (skipped) without them.
#
#   tests/package/deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null; then
  echo "skipped: installing a package needs root and dpkg"
  exit 77
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  dpkg --purge wasmlet >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if dpkg -s wasmlet >/dev/null 2>&1; then dpkg --purge wasmlet >/dev/null; fi
(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/out/wasmlet_*_amd64.deb)
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed"

# What runs from the package runs in a mount namespace where the source and build trees are
# empty folders: the binaries, V8, the SDK and the config must all come from the package.
run_installed() {
  set -euo pipefail
  server=""
  trap '[ -n "$server" ] && kill "$server" 2>/dev/null; true' EXIT
  mount -t tmpfs -o size=1m tmpfs "$build"
  mount -t tmpfs -o size=1m tmpfs "$repo"
  [ ! -e "$build/CMakeCache.txt" ] && [ ! -e "$repo/CMakeLists.txt" ] || fail "the build tree is still visible"
  cd "$work"

  # The installed binaries load V8 from the package.
  # (Outputs are captured first: with pipefail, `grep -q` closing a pipe early fails the pipe.)
  runpath=$(readelf -d /usr/bin/wasmlet)
  grep -q 'RUNPATH.*\[\$ORIGIN/../lib/wasmlet\]' <<<"$runpath" || fail "RUNPATH is not \$ORIGIN/../lib/wasmlet"
  libs=$(ldd /usr/bin/wasmlet)
  grep -q 'libnode.so.108 => /usr/bin/../lib/wasmlet/libnode.so.108' <<<"$libs" || fail "libnode is not the package's: $libs"
  libs=$(ldd /usr/bin/containerd-shim-wasmlet-v2)
  grep -q 'not found' <<<"$libs" && fail "the shim misses a library: $libs"
  version=$(/usr/bin/wasmlet version)
  grep -q '^wasmlet [0-9]' <<<"$version" || fail "wasmlet version printed: $version"
  grep -q '^engine  v8 ' <<<"$version" || fail "wasmlet version printed: $version"
  [ -f /lib/systemd/system/wasmlet.service ] || [ -f /usr/lib/systemd/system/wasmlet.service ] || fail "no systemd unit"
  [ -f /etc/wasmlet/config.json ] || fail "no /etc/wasmlet/config.json"

  # The packaged quickstart, on free ports (the other tests may run beside this one).
  port=$(free_port); admin=$(free_port)
  python3 - "$port" "$admin" <<'PY' >"$work/config.json"
import json, sys
config = json.load(open("/etc/wasmlet/config.json"))
listeners = config["servers"][0]["listeners"]
listeners[0]["address"] = "127.0.0.1:0"
listeners[1]["address"] = "127.0.0.1:" + sys.argv[1]
config["wasmlet"] = {"admin_address": "127.0.0.1:" + sys.argv[2]}
print(json.dumps(config))
PY
  /usr/bin/wasmlet state set state_demo book1 100 -c "$work/config.json" || fail "state set"
  /usr/bin/wasmlet start -c "$work/config.json" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 500); do curl -sf -o /dev/null "http://127.0.0.1:$port/__wasmlet/fixed" && break; sleep 0.02; done
  answer=$(curl -s -H 'id: id_1' "http://127.0.0.1:$port/?name=book1")
  [ "$answer" = "There are 100 inventories for book1." ] || { cat "$work/server.log"; fail "quickstart answered: $answer"; }

  # A function from `wasmlet new`, built out of tree against the installed SDK, then served.
  (cd "$work" && /usr/bin/wasmlet new pkgfn >/dev/null) || fail "wasmlet new"
  grep -q '/usr/share/wasmlet/sdk/cmake/wasm32-wasi.cmake' "$work/pkgfn/CMakeLists.txt" || fail "the template does not use the installed SDK"
  (cd "$work" && cmake -S pkgfn -B pkgfn/build >"$work/fn.log" 2>&1 && cmake --build pkgfn/build >>"$work/fn.log" 2>&1) ||
    { cat "$work/fn.log"; fail "the new function did not build"; }
  /usr/bin/wasmlet install "$work/pkgfn/build/pkgfn.wasm" --id pkgfn --admin "127.0.0.1:$admin" || fail "wasmlet install"
  answer=$(curl -s -H 'id: pkgfn' "http://127.0.0.1:$port/?name=package")
  [ "$answer" = "hello, package" ] || fail "the new function answered: $answer"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  echo "installed: version, quickstart and a new function all ran from /usr"
}
export -f run_installed fail free_port
export build repo work
unshare --mount --propagation private bash -c run_installed || fail "the installed wasmlet did not run without the build tree"

dpkg -r wasmlet >/dev/null || fail "dpkg -r"
for path in /usr/bin/wasmlet /usr/bin/containerd-shim-wasmlet-v2 /usr/lib/wasmlet /usr/share/wasmlet /usr/include/wasmlet; do
  [ ! -e "$path" ] || fail "$path is left after dpkg -r"
done
[ -f /etc/wasmlet/config.json ] || fail "dpkg -r removed the config"
status=$(dpkg -s wasmlet 2>/dev/null)
grep -q '^Status: deinstall ok config-files' <<<"$status" || fail "package status after remove: $status"
dpkg --purge wasmlet >/dev/null || fail "dpkg --purge"
[ ! -e /etc/wasmlet ] || fail "/etc/wasmlet is left after purge"
[ ! -e /var/lib/wasmlet ] || fail "/var/lib/wasmlet is left after purge"
echo "removed: only the config (/etc/wasmlet) and the state directory (/var/lib/wasmlet) stayed; purged: nothing stayed"
