#!/usr/bin/env bash
# The WebGPU bench (issue 14) on a machine with a GPU but no Node.js and no network. Run from the repository
# root there, with .gpu/ carried (made here by bench/gpu/pack-carry.sh):
#   .gpu/node.xz      this machine's node binary, xz-compressed
#   .gpu/app.tar.xz   dist/, dist-bench/ (the built benches), bin/, the native addon, the production node_modules
#                     with the `webgpu` package's linux-x64 dawn.node
#   .gpu/debs/*.deb   the Vulkan loader and GLVND (the image has neither, so Dawn finds no adapter without them)
# It unpacks the .debs into / (as the device README says), writes the a3b model once (common.sh; skipped when
# MODEL names a file), then runs `bench gpu`: the kernel table against the copy ceiling, then decode and
# prefill of the model on --backend webgpu after its greedy-token check against the CPU backend. JSON result
# and logs go under $OUT (or ./gpu-out). QUICK=1: small kernel shapes. NO_DEBS=1: leave / alone (a machine
# with a Vulkan loader, e.g. lavapipe here: VK_DRIVER_FILES=/opt/mesa25/lvp_icd.json MODEL=tiny.gguf).
set -euo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
W=${W:-/tmp/moestream-gpu}; mkdir -p "$W"
REPO=$PWD
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/steps.log"; }
source "$REPO/bench/gpu/common.sh"
log "unpack"
unpack_app
if [ -z "${NO_DEBS:-}" ]; then unpack_debs; fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" || true
MODEL=${MODEL:-$MODEL_DEFAULT}
if [ ! -f "$MODEL" ]; then
  log "generate the model"
  gen_model "$MODEL"
fi
log "model: $MODEL ($(du -h "$MODEL" | cut -f1))"
ARGS=(gpu "--model=$MODEL" "--json=$OUT/webgpu.json")
[ -n "${QUICK:-}" ] && ARGS+=(--quick)
[ -n "${ONLY:-}" ] && ARGS+=("--only=$ONLY")
log "bench: node dist-bench/bench/main.js ${ARGS[*]}"
set +e
( cd "$W/app" && "$W/node" dist-bench/bench/main.js "${ARGS[@]}" ) 2>&1 | tee "$OUT/webgpu.log"
rc=${PIPESTATUS[0]}
set -e
log "bench exit $rc"
exit "$rc"
