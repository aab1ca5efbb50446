#!/usr/bin/env bash
# Creates the ignored virtual environment that holds the benchmark's peer (llama.cpp through
# llama-cpp-python, compiled from source for this CPU) and matplotlib for the plots.
# Idempotent: a venv whose pinned packages already import is left alone. The first build of
# llama.cpp takes many minutes on 2 cores (its log: <venv>/llama-build.log).
#   BENCH_VENV   where the venv lives (default: <repo>/.venv-bench, git-ignored)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
# Pinned so both systems are compared against a known llama.cpp (0.3.36: the newest in the registry).
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
MATPLOTLIB_VERSION="${MATPLOTLIB_VERSION:-3.11.2}"

ready() {
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
ok = m.version("llama_cpp_python") == "$LLAMA_CPP_PYTHON_VERSION" and m.version("matplotlib") == "$MATPLOTLIB_VERSION"
import llama_cpp, matplotlib
sys.exit(0 if ok else 1)
PY
}

mkdir -p "$(dirname "$VENV")" "$ROOT/.cache"
# One installer at a time: a second caller waits for the first, then finds the venv ready.
exec 9> "$ROOT/.cache/bench-venv.lock"  # .cache/ is git-ignored
flock 9
# An install started by an older copy of this script holds no lock: wait for its pip too.
while pgrep -f "$VENV/bin/python -m pip install" > /dev/null; do
  echo "waiting for a running pip install into $VENV ..."
  sleep 30
done
if ready; then
  echo "bench venv ready: $VENV"
  exit 0
fi

PY="${PYTHON:-python3}"
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "matplotlib==$MATPLOTLIB_VERSION"
# llama-cpp-python's sdist builds llama.cpp with CMake. GGML_NATIVE tunes it for this CPU (the same
# courtesy tern gets from its runtime ISA dispatch); two jobs because the machine has two cores.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
echo "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from source (many minutes; log: $VENV/llama-build.log)"
"$VENV/bin/python" -m pip install --no-binary llama-cpp-python --verbose \
  "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" > "$VENV/llama-build.log" 2>&1 || {
  echo "llama-cpp-python build failed; last lines of $VENV/llama-build.log:" >&2
  tail -40 "$VENV/llama-build.log" >&2
  exit 1
}
"$VENV/bin/python" -c "import llama_cpp, matplotlib; print('bench venv ready:', llama_cpp.__version__)"
