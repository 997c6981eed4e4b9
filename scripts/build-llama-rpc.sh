#!/usr/bin/env bash
# Build llama.cpp with its RPC backend (GGML_RPC=ON) from the llama-cpp-python sdist glm-edge pins, CPU only,
# Release: an RPC-enabled libllama (+ libggml*) for glm-edge's `rpc` setting, and `rpc-server`, the worker.
#
#   scripts/build-llama-rpc.sh            # builds into ~/.cache/glm-edge/llama-rpc-0.3.36 (reused when present)
#   LLAMA_CPP_LIB_PATH=~/.cache/glm-edge/llama-rpc-0.3.36/lib glm-edge serve --rpc 10.0.0.2:50052 ...
#   ~/.cache/glm-edge/llama-rpc-0.3.36/bin/rpc-server --host 10.0.0.2 --port 50052   # on each worker
#
# llama-cpp-python loads libllama from $LLAMA_CPP_LIB_PATH instead of its own lib/ folder when that is set
# (llama_cpp/llama_cpp.py), so the stock wheel stays installed. For a CUDA worker or client, pass
# EXTRA_CMAKE_ARGS="-DGGML_CUDA=on". The RPC protocol has no authentication: private networks only.
# The CPU flags are glm-edge's (scripts/llama-cpu-flags.sh: this machine's CPU without AMX); a build made with other
# flags or arguments is made again.
# Environment: LLAMA_CPP_VERSION (0.3.36), PREFIX (the cache folder), JOBS (2), EXTRA_CMAKE_ARGS, FORCE=1.
set -euo pipefail
# shellcheck source=scripts/llama-cpu-flags.sh
. "$(dirname "$0")/llama-cpu-flags.sh"

VERSION=${LLAMA_CPP_VERSION:-0.3.36}
PREFIX=${PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/glm-edge/llama-rpc-$VERSION}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python3}

INFO="llama-cpp-python $VERSION vendor/llama.cpp, GGML_RPC=ON, $LLAMA_CPU_VARIANT ${EXTRA_CMAKE_ARGS:-}"
if [ -z "${FORCE:-}" ] && [ -f "$PREFIX/lib/libllama.so" ] && [ -x "$PREFIX/lib/rpc-server" ] \
  && [ "$(cat "$PREFIX/BUILD_INFO" 2>/dev/null)" = "$INFO" ]; then
  echo "RPC build present: $PREFIX"
  exit 0
fi

WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/llama-rpc-build.XXXXXX")}
SDIST=$WORK/llama_cpp_python-$VERSION.tar.gz
if [ ! -f "$SDIST" ]; then
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK"
fi
if [ ! -d "$WORK/llama_cpp_python-$VERSION" ]; then
  tar -xzf "$SDIST" -C "$WORK"
fi
SRC=$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp
BUILD=$WORK/build

# shellcheck disable=SC2086
CFLAGS="${CFLAGS:-} $LLAMA_CPU_FLAGS" CXXFLAGS="${CXXFLAGS:-} $LLAMA_CPU_FLAGS" \
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DGGML_RPC=ON -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON \
  ${EXTRA_CMAKE_ARGS:-} >"$WORK/cmake.log"
# only what is needed: libllama (pulls libggml, -base, -cpu, -rpc) and the worker
cmake --build "$BUILD" -j "$JOBS" --target llama ggml-rpc-server

STAGE=$PREFIX.partial
rm -rf "$STAGE"
mkdir -p "$STAGE/lib" "$STAGE/bin"
find "$BUILD/bin" "$BUILD" -maxdepth 3 -name 'lib*.so*' -exec cp -a {} "$STAGE/lib/" \; 2>/dev/null || true
# the worker sits beside its libggml* (its RUNPATH is $ORIGIN); bin/rpc-server starts it
cp "$BUILD/bin/ggml-rpc-server" "$STAGE/lib/rpc-server"
cat >"$STAGE/bin/rpc-server" <<'SH'
#!/bin/sh
exec "$(cd "$(dirname "$0")/../lib" && pwd)/rpc-server" "$@"
SH
chmod +x "$STAGE/bin/rpc-server"
check_no_amx "$STAGE/lib"
echo "$INFO" >"$STAGE/BUILD_INFO"
rm -rf "$PREFIX"
mv "$STAGE" "$PREFIX"
[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
echo "RPC build ready: $PREFIX (LLAMA_CPP_LIB_PATH=$PREFIX/lib)"
