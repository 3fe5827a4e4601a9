#!/usr/bin/env bash
# What the GPU driver keys its SM clock on for a Vulkan workload (clock-probe.mjs: load patterns of known duty
# cycle, nvidia-smi beside them), and whether a CUDA context on the GPU changes it (another process holding one
# through the native addon, as --gpu-hold-clock does). Then whether padding the split tier's idle windows keeps the clock up: bench gpu
# --split with padIters variants (PADS, comma-separated) alternating with the defaults, a3b at 25% of the expert
# bytes, nvidia-smi beside it (NOPAD=1: not); AB=1: admission off against --gpu-admit 1 in one process. Carried: .gpu. Results in $OUT/steps.log (and clock-probe.log, pad.log, pad-smi.csv).
set -uo pipefail
W=${W:-/tmp/moestream-clock}
source "$PWD/bench/gpu/common.sh"
enter_app
cp "$REPO/bench/gpu/clock-probe.mjs" .
timeout 180 "$W/node" clock-probe.mjs cuda-hold > "$OUT/clock-probe.log" 2>&1
log "clock probe rc=$?"
grep -v '^Warning' "$OUT/clock-probe.log" | tee -a "$OUT/steps.log"
[ -n "${NOPAD:-}" ] && [ -z "${AB:-}" ] && exit 0
M=/tmp/moestream-ab/a3b.gguf  # where tier-ab.sh looks for it: written once
mkdir -p /tmp/moestream-ab
gen_model "$M"; log "gen a3b rc=$?"
nvidia-smi --query-gpu=timestamp,clocks.sm,utilization.gpu,power.draw --format=csv,noheader -lms 100 > "$OUT/pad-smi.csv" 2>&1 &
SMI=$!
if [ -z "${NOPAD:-}" ]; then
  timeout 200 "$W/node" dist-bench/bench/main.js gpu --quick --only=none --model="$M" --split=0.25 --pad="${PADS:-4000,20000}" --json="$OUT/pad.json" > "$OUT/pad.log" 2>&1
  log "pad rc=$? $(grep -E 'split tier at|its host' "$OUT/pad.log" | tr '\n' ' ')"
fi
# AB=1: admission off (inf) against --gpu-admit 1, a model loaded for each in one process, alternating.
if [ -n "${AB:-}" ]; then
  timeout 240 "$W/node" dist-bench/bench/main.js gpu --quick --only=none --model="$M" --split=0.25 --admit-ab --rounds=8 > "$OUT/admit-ab.log" 2>&1
  log "admit A/B rc=$? $(grep -E 'split tier at' "$OUT/admit-ab.log" | tr '\n' ' ')"
fi
kill $SMI
awk -F', ' '{ c[$2]++ } END { for (k in c) print "  sm clock " k ": " c[k] " samples" }' "$OUT/pad-smi.csv" | sort -t: -k2 -n | tail -8 | tee -a "$OUT/steps.log"
