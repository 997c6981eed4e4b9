#!/usr/bin/env bash
# Build the llama-cpp-python wheel glm-edge pins, for this machine's CPU without AMX (scripts/llama-cpu-flags.sh
# says why), into ~/.cache/glm-edge/wheels/ (reused when present), and print its path; --install also installs it
# into the active Python (before `pip install -e .`, which then finds the pin satisfied).
#
#   scripts/build-llama-wheel.sh --install
#
# pip's own wheel cache cannot be used for this: it keys a built wheel by the sdist alone, not by the flags it was
# compiled with, so a wheel built once with AMX would keep coming back. About 10 minutes on 2 cores.
# Environment: LLAMA_CPP_VERSION (0.3.36), WHEELS (the cache folder), JOBS (2), EXTRA_CMAKE_ARGS, FORCE=1.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/llama-cpu-flags.sh
. ./llama-cpu-flags.sh

VERSION=${LLAMA_CPP_VERSION:-0.3.36}
PYTHON=${PYTHON:-python3}
TAG=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
WHEELS=${WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/glm-edge/wheels}
OUT=$WHEELS/llama-cpp-python-$VERSION-$TAG-$LLAMA_CPU_VARIANT
if [ -n "${EXTRA_CMAKE_ARGS:-}" ]; then  # one folder per set of extra arguments
  OUT=$OUT-$(printf %s "$EXTRA_CMAKE_ARGS" | sha256sum | cut -c1-12)
fi

wheel() { find "$OUT" -maxdepth 1 -name "llama_cpp_python-$VERSION-*.whl" 2>/dev/null | head -n 1; }

if [ -n "${FORCE:-}" ] || [ -z "$(wheel)" ]; then
  STAGE=$OUT.partial
  rm -rf "$STAGE"
  mkdir -p "$STAGE"
  echo "building llama-cpp-python $VERSION ($LLAMA_CPU_VARIANT) into $OUT" >&2
  # --no-cache-dir: never take (or leave) a wheel in pip's cache, whose key ignores the flags
  CFLAGS="${CFLAGS:-} $LLAMA_CPU_FLAGS" CXXFLAGS="${CXXFLAGS:-} $LLAMA_CPU_FLAGS" \
    CMAKE_ARGS="-DGGML_NATIVE=ON ${EXTRA_CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-2}" \
    "$PYTHON" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python==$VERSION" -w "$STAGE" >&2
  CHECK=$(mktemp -d)
  "$PYTHON" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2], [n for n in
z.namelist() if n.startswith("llama_cpp/lib/")])' "$STAGE"/llama_cpp_python-*.whl "$CHECK"
  check_no_amx "$CHECK/llama_cpp/lib"
  rm -rf "$CHECK" "$OUT"
  mv "$STAGE" "$OUT"
fi

WHEEL=$(wheel)
if [ "${1:-}" = "--install" ]; then
  "$PYTHON" -m pip install -q --no-deps --force-reinstall "$WHEEL" >&2
fi
echo "$WHEEL"
