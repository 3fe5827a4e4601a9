#!/usr/bin/env bash
# The llama.cpp CUDA anchor of the GPU bench (issue 14), for a machine with a GPU but no Node.js and no
# network. Run from the repository root there, with .gpu/ carried (made here by bench/gpu/pack-carry.sh):
#   .gpu/node.xz          this machine's node binary, xz-compressed
#   .gpu/app.tar.xz       dist/, bin/, the native addon and the production node_modules (gen needs them)
#   .gpu/llama-src.tar.xz the llama.cpp source node-llama-cpp ships (gitRelease.bundle), trimmed
# It builds llama-bench with CUDA for the local GPU's architecture while the generator writes the a3b
# model (common.sh: Qwen3-30B-A3B shapes, 48 layers, experts Q4_K, dense Q8_0), then runs llama-bench fully
# offloaded and with the experts of all but 25% of the layers kept
# in host memory (-ncmoe), writing JSON results and logs under $OUT (or ./gpu-out).
set -euo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
W=${W:-/tmp/moestream-gpu}; mkdir -p "$W/app" "$W/llama"
REPO=$PWD
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/steps.log"; }
source "$REPO/bench/gpu/common.sh"
log "unpack"
unpack_app
tar -xJf .gpu/llama-src.tar.xz -C "$W/llama"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" || true
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
JOBS=$(nproc)
log "build llama-bench (CUDA sm_$ARCH, $JOBS jobs) and generate the model in parallel"
( cmake -S "$W/llama" -B "$W/llama/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
  && cmake --build "$W/llama/build" --target llama-bench -j "$JOBS" ) > "$OUT/build.log" 2>&1 &
BUILD=$!
MODEL=${MODEL:-$MODEL_DEFAULT}
gen_model "$MODEL"
log "model written: $(du -h "$MODEL" | cut -f1)"
log "waiting for the build"
wait $BUILD || { log "build failed"; tail -40 "$OUT/build.log"; exit 1; }
log "build done"
BENCH=$W/llama/build/bin/llama-bench
LAYERS=48; GPU_LAYERS=$(( LAYERS / 4 ))
"$BENCH" -m "$MODEL" -ngl 99 -p 512 -n 128 -r 3 -o json > "$OUT/llama-cuda-resident.json" 2> "$OUT/llama-resident.log"
log "resident done"
"$BENCH" -m "$MODEL" -ngl 99 -ncmoe $(( LAYERS - GPU_LAYERS )) -t "$JOBS" -p 512 -n 128 -r 2 -o json \
  > "$OUT/llama-cuda-experts25.json" 2> "$OUT/llama-experts25.log"
log "experts25 done"
