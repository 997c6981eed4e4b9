#!/usr/bin/env bash
# One GPU check for glm-edge on a CUDA machine (issue 11): build llama-cpp-python for this GPU, write a GGUF of
# GLM-4-9B's exact shapes (random weights, Q4_K_M), then measure in one run
#   - glm-edge bench (HTTP streaming at several concurrencies, with llama-cpp-python's Llama as baseline), and
#   - llama.cpp's own llama-bench and llama-batched-bench, built from the same vendored llama.cpp sources,
# and write one report (REPORT, default gpu-report.md). Meant to finish in under 10 minutes on a 16-core
# machine with one datacenter GPU; the llama.cpp build is the longest part.
#
#   bash scripts/gpu-check.sh            # from the repository root, with CUDA's nvcc on PATH
#
# Environment: VENV (.venv-gpu), WORK (gpu-check.work), REPORT (gpu-report.md), CONCURRENCY (1,8,32),
# MAX_TOKENS (256), JOBS (nproc), CUDA_ARCH (native).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/llama-cpu-flags.sh
. scripts/llama-cpu-flags.sh  # the CPU backend without AMX (SIGILL in the pinned llama.cpp on newer Xeons)
export CFLAGS="${CFLAGS:-} $LLAMA_CPU_FLAGS" CXXFLAGS="${CXXFLAGS:-} $LLAMA_CPU_FLAGS"

VENV=${VENV:-.venv-gpu}
WORK=${WORK:-gpu-check.work}
REPORT=${REPORT:-gpu-report.md}
CONCURRENCY=${CONCURRENCY:-1,8,32}
MAX_TOKENS=${MAX_TOKENS:-256}
JOBS=${JOBS:-$(nproc)}
CUDA_ARCH=${CUDA_ARCH:-native}
LLAMA_CPP_PYTHON=0.3.36

command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found (no NVIDIA driver)" >&2; exit 1; }
mkdir -p "$WORK"
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started )) s] $*"; }

stamp "virtualenv and llama-cpp-python $LLAMA_CPP_PYTHON built for CUDA ($CUDA_ARCH)"
python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q -U pip setuptools wheel
CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
  python -m pip install -q --no-cache-dir "llama-cpp-python==$LLAMA_CPP_PYTHON"
python -m pip install -q --no-deps -r requirements-nodeps.txt
python -m pip install -q -e .
python -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 'no GPU offload in this build')"

stamp "llama-bench and llama-batched-bench from the same vendored llama.cpp sources"
python -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$WORK"
tar -xzf "$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$WORK"
SRC="$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp"
cmake -S "$SRC" -B "$WORK/build" -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" \
  -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log"
cmake --build "$WORK/build" -j "$JOBS" --target llama-bench llama-batched-bench >"$WORK/build.log"

MODEL="$WORK/glm4-9b-Q4_K_M.gguf"
if [ ! -f "$MODEL" ]; then
  stamp "GLM-4-9B-shaped GGUF (random weights, Q4_K_M)"
  glm-edge synth --arch glm4 --size 9b --type Q4_K_M -o "$MODEL"
fi

stamp "glm-edge bench (HTTP, streaming) against llama-cpp-python's Llama on the same GGUF"
glm-edge bench "$MODEL" --concurrency "$CONCURRENCY" --max-tokens "$MAX_TOKENS" --n-gpu-layers -1 \
  --reference >"$WORK/glm-edge-bench.txt"

max_npl=${CONCURRENCY##*,}
stamp "llama-batched-bench (prompt 32, $MAX_TOKENS generated, parallel $CONCURRENCY)"
"$WORK/build/bin/llama-batched-bench" -m "$MODEL" -ngl 99 -fa on -c $(( (32 + MAX_TOKENS) * max_npl + 512 )) \
  -b 2048 -ub 512 -npp 32 -ntg "$MAX_TOKENS" -npl "$CONCURRENCY" >"$WORK/llama-batched-bench.txt" 2>&1
stamp "llama-bench (pp512, tg128)"
"$WORK/build/bin/llama-bench" -m "$MODEL" -ngl 99 -fa on -p 512 -n 128 -o md >"$WORK/llama-bench.md" 2>&1

stamp "report: $REPORT"
{
  echo "# glm-edge GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "CPU cores: $(nproc); llama-cpp-python $LLAMA_CPP_PYTHON; model: GLM-4-9B shapes, Q4_K_M, random weights"
  echo '```'
  echo
  echo "## glm-edge bench --concurrency $CONCURRENCY --max-tokens $MAX_TOKENS --reference"
  echo '```'; cat "$WORK/glm-edge-bench.txt"; echo '```'
  echo
  echo "## llama-batched-bench -npp 32 -ntg $MAX_TOKENS -npl $CONCURRENCY (llama.cpp's own ceiling)"
  echo '```'; grep -E '^\|' "$WORK/llama-batched-bench.txt" || tail -n 20 "$WORK/llama-batched-bench.txt"; echo '```'
  echo
  echo "## llama-bench -p 512 -n 128"
  grep -E '^\|' "$WORK/llama-bench.md" || tail -n 20 "$WORK/llama-bench.md"
  echo
  echo "Total: $(( $(date +%s) - started )) s"
} >"$REPORT"
stamp "done"
