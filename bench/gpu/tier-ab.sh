#!/usr/bin/env bash
# The split GPU tier (issue 14's weakest bar) on a3b (48 layers) at 25% of the expert bytes, its admission variants
# alternating (two rounds: the host drifts), the upload rate through mapped staging both ways, and where a resident
# decode token's host time goes with Dawn's default flags and with skip_validation (the host records ~440 dispatches
# a token). Then a3b-8L's split decode under --cpu-prof. Carried: .gpu (bench/gpu/pack-carry.sh). Results in $OUT.
set -uo pipefail
W=${W:-/tmp/moestream-ab}
source "$PWD/bench/gpu/common.sh"
start_run
unpack_debs || exit 1
unpack_app
cd "$W/app"
N=("$W/node" bin/moestream.cjs)
M48=$W/a3b.gguf M8=$W/a3b-8L.gguf
gen_model "$M48"; log "gen a3b rc=$?"
gen_model_8l "$M8"; log "gen a3b-8L rc=$?"
EXP=$(( 48 * 128 * 3 * 2048 * 768 * 9 / 16 ))  # a3b's Q4_K expert bytes
timeout 60 "$W/node" dist-bench/bench/main.js gpu --quick --only=none > "$OUT/ceiling.log" 2>&1; log "ceiling rc=$? $(grep ceiling "$OUT/ceiling.log")"
for flags in "" "skip_validation"; do
  D="enable-dawn-features=disable_robustness,disable_workgroup_init${flags:+,$flags} disable-dawn-features=timestamp_quantization"
  timeout 90 "$W/node" dist-bench/bench/main.js gpu --only=none --profile-only --model="$M48" --dawn="$D" > "$OUT/profile${flags:+-$flags}.log" 2>&1
  log "profile ${flags:-default} rc=$? $(grep -E 'decode token on webgpu|recorded ahead' "$OUT/profile${flags:+-$flags}.log" | tr '\n' ' ')"
done
B=(bench -m "$M48" --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) -p 64 -n 32 -r 1 --json)
for round in 1 2; do
  for mode in ${MODES:-cpu cpu-fill}; do
    timeout 60 "${N[@]}" "${B[@]}" --gpu-misses "$mode" > "$OUT/split-$mode-$round.json" 2>> "$OUT/steps.log"
    log "split $mode round $round rc=$? $("$W/node" -e 'const j=require(process.argv[1]);const d=j.lastRun.experts.decode,t=j.lastRun.generatedTokens;console.log(`tg ${j.tg.tokPerSec.map((v)=>v.toFixed(2))} tok/s; a token: gpu ${(d.gpuHits/t).toFixed(1)}, uploads ${(d.gpuMisses/t).toFixed(1)}, cpu ${(d.gpuHostRuns/t).toFixed(1)}`)' "$OUT/split-$mode-$round.json" 2>&1)"
  done
done
P=(bench -m "$M8" --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 24 )) -p 64 -n 64 -r 1 --json --gpu-misses cpu)
timeout 60 "$W/node" --cpu-prof --cpu-prof-dir="$OUT/prof" bin/moestream.cjs "${P[@]}" > "$OUT/split8-prof.json" 2>> "$OUT/steps.log"; log "split a3b-8L (profiled) rc=$? $(grep -o '"tg":{[^}]*}' "$OUT/split8-prof.json")"
for p in "$OUT"/prof/*.cpuprofile; do [ -f "$p" ] && gzip "$p"; done
