#!/usr/bin/env bash
# Where a split-tier decode token goes (issue 14's weakest bar), in one short device call: a3b-8L (a3b's layer
# shapes, 8 layers: a 2 GB file written in seconds) with a GPU tier of 25% of the expert bytes and the other experts
# on the CPU (--gpu-misses cpu), under node --cpu-prof; scripts/cpu-profile.mjs summarises the profile here by self
# time. Carried: .gpu (bench/gpu/pack-carry.sh). Results under $OUT (or ./gpu-out).
set -uo pipefail
W=${W:-/tmp/moestream-tier}
source "$PWD/bench/gpu/common.sh"
enter_app
MODEL=$W/a3b-8L.gguf
gen_model_8l "$MODEL"
log "gen rc=$?"
EXP=$(( 8 * 128 * 3 * 2048 * 768 * 9 / 16 ))  # a3b-8L's Q4_K expert bytes (144 bytes a 256-value block)
B=(bench -m "$MODEL" --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) -p 64 -n 64 -r 1 --json)
timeout 60 "$W/node" bin/moestream.cjs "${B[@]}" --gpu-misses cpu > "$OUT/split.json" 2>> "$OUT/steps.log"; log "split rc=$?"
timeout 60 "$W/node" --cpu-prof --cpu-prof-dir="$OUT/prof" bin/moestream.cjs "${B[@]}" --gpu-misses cpu > "$OUT/split-prof.json" 2>> "$OUT/steps.log"; log "split (profiled) rc=$?"
timeout 60 "$W/node" bin/moestream.cjs "${B[@]}" --gpu-expert-cache $(( EXP * 2 )) > "$OUT/resident.json" 2>> "$OUT/steps.log"; log "resident rc=$?"
# The garbage the waits make: Dawn polls a pending map or onSubmittedWorkDone from setImmediate, allocating as it
# spins (on lavapipe ~40 MB/s of heap during a wait, scavenges of 10-19 ms in a split run); resident decode too.
timeout 60 "$W/node" --trace-gc bin/moestream.cjs "${B[@]}" --gpu-misses cpu > "$OUT/split-gc.log" 2>&1
log "split (gc traced) rc=$? scavenges $(grep -c Scavenge "$OUT/split-gc.log") mark-compacts $(grep -c Mark-Compact "$OUT/split-gc.log")"
timeout 60 "$W/node" --trace-gc --cpu-prof --cpu-prof-dir="$OUT/prof-resident" bin/moestream.cjs "${B[@]}" --gpu-expert-cache $(( EXP * 2 )) > "$OUT/resident-gc.log" 2>&1
log "resident (gc traced, profiled) rc=$? scavenges $(grep -c Scavenge "$OUT/resident-gc.log") mark-compacts $(grep -c Mark-Compact "$OUT/resident-gc.log")"
for p in "$OUT"/prof/*.cpuprofile "$OUT"/prof-resident/*.cpuprofile; do [ -f "$p" ] && "$W/node" "$REPO/scripts/cpu-profile.mjs" "$p" 20 | tee -a "$OUT/steps.log"; done
