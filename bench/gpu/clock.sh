#!/usr/bin/env bash
# What the GPU driver keys its SM clock on for a Vulkan workload (clock-probe.mjs: load patterns of known duty
# cycle, nvidia-smi beside them), and whether a CUDA context on the GPU changes it (cuda-hold, built here by
# pack-carry.sh from cuda-hold.c). Carried: .gpu. Results in $OUT/steps.log (and clock-probe.log).
set -uo pipefail
W=${W:-/tmp/moestream-clock}
source "$PWD/bench/gpu/common.sh"
enter_app
cp "$REPO/bench/gpu/clock-probe.mjs" .
HOLD=$REPO/.gpu/cuda-hold
[ -x "$HOLD" ] || HOLD=
timeout 180 "$W/node" clock-probe.mjs $HOLD > "$OUT/clock-probe.log" 2>&1
log "clock probe rc=$?"
grep -v '^Warning' "$OUT/clock-probe.log" | tee -a "$OUT/steps.log"
