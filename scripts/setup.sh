#!/usr/bin/env bash
# Sets up everything wasmlet needs on a Debian 12 machine and builds it.
# Idempotent: packages already present are not reinstalled, V8 is unpacked once,
# and the build is incremental. Run as root (or with passwordless sudo).
#
#   scripts/setup.sh [--build-dir DIR] [--build-type TYPE] [--no-build]
#
# Environment: WASMLET_WERROR=ON turns compiler warnings into errors (CI sets it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$repo/build"
build_type=RelWithDebInfo
do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --build-type) build_type=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    *) echo "setup.sh: unknown option '$1' (see the comment at the top of the script)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root, or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

# Debian packages. Grouped by what needs them.
packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libboost1.74-dev libhiredis-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev libarchive-dev
  libnghttp2-dev
  libprotobuf-dev protobuf-compiler
  # the runtime API for applications: gRPC C++, and its Python plugin for the tests' stubs
  libgrpc++-dev protobuf-compiler-grpc
  # runtime dependencies of Debian's libnode108 (V8), which is unpacked below
  libicu72 libc-ares2 libuv1 libbrotli1 libnghttp2-14 libssl3 zlib1g
  # guest modules: C/C++ to wasm32-wasi
  clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 libc++-19-dev-wasm32 libc++abi-19-dev-wasm32
  # fuzzing (scripts/fuzz.sh): libFuzzer and sanitizer runtimes, llvm-symbolizer for stack traces
  libclang-rt-19-dev llvm-19
  # tests and benchmarks talk to a real Redis
  redis-server
  # the gRPC server the tests of gRPC calls talk to (Debian's python3 only)
  python3-grpcio
  # the upstream of the proxy-mode example in the README (python3 -m http.server)
  python3
  # the package test (tests/package/deb_test.sh) and the README's examples call with curl
  curl
  # the containerd shim is tested against Debian's containerd (FaaS mode)
  containerd
  # the dashboard is tested in a real browser, headless, driven through WebDriver
  chromium chromium-driver
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all present"
fi

# V8 comes from Debian's libnode108 + libnode-dev. libnode-dev conflicts with the Node.js
# package of the machine image, so the two packages are unpacked into a private prefix
# instead of being installed (see docs/architecture.md).
v8_prefix="$repo/build/_v8"
v8_root="$v8_prefix/root"
if [ -f /usr/include/node/v8.h ] && ls /usr/lib/x86_64-linux-gnu/libnode.so.108 >/dev/null 2>&1; then
  log "V8: using the system's libnode-dev"
elif [ -f "$v8_root/usr/include/node/v8.h" ] && [ -f "$v8_root/usr/lib/x86_64-linux-gnu/libnode.so.108" ]; then
  log "V8: already unpacked in $v8_root"
else
  log "V8: downloading libnode108 and libnode-dev into $v8_prefix"
  rm -rf "$v8_prefix"
  mkdir -p "$v8_prefix/debs" "$v8_root"
  # apt-get download writes into the current directory and wants it writable by _apt.
  (cd "$v8_prefix/debs" && apt-get download libnode108 libnode-dev)
  for deb in "$v8_prefix"/debs/*.deb; do dpkg -x "$deb" "$v8_root"; done
  [ -f "$v8_root/usr/include/node/v8.h" ] || { echo "setup.sh: V8 headers missing after unpacking" >&2; exit 1; }
fi

# Dapr's JavaScript SDK, which the tests of Dapr's HTTP API drive (tests/api/dapr_sdk_test.cjs),
# from the npm registry into a private prefix beside V8, with Debian's Node.js.
dapr_js_prefix="$repo/build/_node"
dapr_js_version=3.18.0
if grep -qs "\"version\": \"$dapr_js_version\"" "$dapr_js_prefix/node_modules/@dapr/dapr/package.json"; then
  log "Dapr's JS SDK: $dapr_js_version already in $dapr_js_prefix"
else
  if ! command -v npm >/dev/null; then
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  log "Dapr's JS SDK: installing @dapr/dapr@$dapr_js_version into $dapr_js_prefix"
  mkdir -p "$dapr_js_prefix"
  npm install --prefix "$dapr_js_prefix" --no-audit --no-fund --silent "@dapr/dapr@$dapr_js_version"
fi

[ "$do_build" -eq 1 ] || exit 0

log "configuring $build_dir ($build_type)"
cmake -S "$repo" -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DWASMLET_WERROR="${WASMLET_WERROR:-OFF}" >/dev/null
log "building"
cmake --build "$build_dir" --parallel "$(nproc)"
log "done: $build_dir/wasmlet"
