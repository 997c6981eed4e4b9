# shellcheck shell=bash
# Sourced by every script that compiles llama.cpp (build-llama-wheel.sh, build-llama-rpc.sh, gpu-check.sh): the
# C/C++ flags of glm-edge's llama.cpp builds, and a check of the built CPU library.
#
# GGML_NATIVE (llama.cpp's default) compiles for the build machine's CPU. On x86-64 glm-edge leaves AMX out: the
# pinned llama.cpp (llama-cpp-python 0.3.36) runs AMX tile instructions in its worker threads without a valid tile
# configuration on newer Xeons, and the process dies with SIGILL at `tilezero` at the first matmul (seen on this
# project's CI machines, whose CPUs report amx_tile/amx_int8; upstream: ggml-org/llama.cpp pull request 26954, open).
# Everything else of the CPU (AVX-512, VNNI, BF16...) stays. GLM_EDGE_LLAMA_AMX=1 keeps AMX.
LLAMA_CPU_FLAGS=""
if [ "$(uname -m)" = x86_64 ] && [ -z "${GLM_EDGE_LLAMA_AMX:-}" ]; then
  LLAMA_CPU_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
# what a build made with these flags is called (wheel and RPC caches are kept per variant)
# shellcheck disable=SC2034  # read by the scripts that source this file
LLAMA_CPU_VARIANT=$([ -n "$LLAMA_CPU_FLAGS" ] && echo native-noamx || echo native)

# check_no_amx LIBDIR: fail when AMX was to be left out and a libggml-cpu there still holds tile instructions
check_no_amx() {
  local lib
  [ -n "$LLAMA_CPU_FLAGS" ] || return 0
  command -v objdump >/dev/null || { echo "objdump not found: AMX check skipped" >&2; return 0; }
  for lib in "$1"/libggml-cpu*.so*; do
    [ -f "$lib" ] && [ ! -L "$lib" ] || continue
    if objdump -d --no-show-raw-insn "$lib" | grep -qE '\s(tilezero|tdpbssd|tdpbf16ps|ldtilecfg)\s'; then
      echo "$lib still holds AMX instructions although it was built with '$LLAMA_CPU_FLAGS'" >&2
      return 1
    fi
  done
}
