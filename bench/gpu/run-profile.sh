#!/usr/bin/env bash
# One device call: where a decode token's time goes on an H100 (bench gpu --profile-only: wall vs process CPU per
# token, GPU time by kernel), once per Dawn flag set given as an argument ("" = the engine's defaults), then the
# kernel rows of the types matching ONLY (default Q: the K and Q8 quants) under the last. PRESET=a3b-8L: a smaller
# model (the same layers; faster to make). Run from the repository root with .gpu/ carried; results in $OUT.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
W=/tmp/mg; mkdir -p "$W/app"
T0=$(date +%s); log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/steps.log"; }
for f in .gpu/debs/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
xz -T0 -dc .gpu/node.xz > "$W/node" && chmod +x "$W/node"
tar -xJf .gpu/app.tar.xz -C "$W/app"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
PRESET=${PRESET:-a3b}; MODEL=$W/$PRESET.gguf
cd "$W/app"
"$W/node" bin/moestream.cjs gen --preset $PRESET --type Q8_0 --expert-type Q4_K --routing real-like --expert-synthesis direct --seed 1 -o "$MODEL" > "$W/gen.log" 2>&1
log "gen rc=$? $(tail -1 $W/gen.log)"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,pstate,utilization.gpu,power.draw --format=csv -lms 100 > "$OUT/clocks.csv" 2>&1 &
SMI=$!
i=0; last=
for flags in "$@"; do
  i=$((i + 1)); last=$flags
  timeout 120 "$W/node" dist-bench/bench/main.js gpu --only=none --quick --profile-only --model=$MODEL --dawn="$flags" --json=$OUT/profile-$i.json > "$OUT/profile-$i.log" 2>&1
  log "profile $i rc=$? flags: $flags"; grep -v "XDG_RUNTIME\|artificially" "$OUT/profile-$i.log" | tail -30
done
timeout 100 "$W/node" dist-bench/bench/main.js gpu --only=${ONLY:-Q} --dawn="$last" --json=$OUT/kernels.json > "$OUT/kernels.log" 2>&1; log "kernels rc=$?"
kill $SMI; log done
