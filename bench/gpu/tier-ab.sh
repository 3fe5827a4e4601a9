#!/usr/bin/env bash
# The split GPU tier (issue 14's weakest bar) on a3b (48 layers) at 25% of the expert bytes: the host's expert sum
# taken later by the device against awaited (bench gpu --split), then the admission variants alternating (two
# rounds: the host drifts), then the default split under --cpu-prof (a3b-8L with EIGHT=1). CEILING=1: the upload
# rate through mapped staging both ways; PROFILE=1: a resident decode token's profile. Carried: .gpu
# (bench/gpu/pack-carry.sh). NOOVERLAP=1, NOPROF=1 skip those parts. Results in $OUT: steps.log, and all.tgz.
set -uo pipefail
W=${W:-/tmp/moestream-ab}
source "$PWD/bench/gpu/common.sh"
enter_app
N=("$W/node" bin/moestream.cjs)
M48=$W/a3b.gguf M8=$W/a3b-8L.gguf
gen_model "$M48"; log "gen a3b rc=$?"
[ -n "${EIGHT:-}" ] && { gen_model_8l "$M8"; log "gen a3b-8L rc=$?"; }
EXP=$(( 48 * 128 * 3 * 2048 * 768 * 9 / 16 ))  # a3b's Q4_K expert bytes
[ -n "${CEILING:-}" ] && { timeout 60 "$W/node" dist-bench/bench/main.js gpu --quick --only=none > "$OUT/ceiling.log" 2>&1; log "ceiling rc=$? $(grep ceiling "$OUT/ceiling.log")"; }
# (skip_validation: no gain on a resident decode token, 16.8 vs 12.8 ms wall in alternating runs, session 16)
[ -n "${PROFILE:-}" ] && { timeout 90 "$W/node" dist-bench/bench/main.js gpu --only=none --profile-only --model="$M48" > "$OUT/profile.log" 2>&1; log "profile rc=$? $(grep -E 'decode token on webgpu|recorded ahead' "$OUT/profile.log" | tr '\n' ' ')"; }
[ -z "${NOOVERLAP:-}" ] && { timeout 120 "$W/node" dist-bench/bench/main.js gpu --quick --only=none --model="$M48" --split=0.25 > "$OUT/overlap.log" 2>&1; log "overlap rc=$? $(grep 'split tier at' "$OUT/overlap.log")"; }
B=(bench -m "$M48" --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) -p 64 -n 32 -r "${REPS:-1}" --json)
# Variants as label=flags (word-split), each run once a round.
VARIANTS=${VARIANTS:-"admit1=--gpu-misses,cpu,--gpu-admit,1 admit8=--gpu-misses,cpu fill=--gpu-misses,cpu-fill"}
# ROUNDS (2), REPS a run (1); nvidia-smi samples the GPU's clocks meanwhile (smi.csv).
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu,power.draw,pstate --format=csv,noheader -lms 100 > "$OUT/smi.csv" 2>&1 &
SMI=$!
for round in $(seq 1 "${ROUNDS:-2}"); do
  for v in $VARIANTS; do
    mode=${v%%=*}
    IFS=, read -ra FL <<< "${v#*=}"
    timeout 60 "${N[@]}" "${B[@]}" "${FL[@]}" > "$OUT/split-$mode-$round.json" 2>> "$OUT/steps.log"
    log "split $mode round $round rc=$? $("$W/node" -e 'const j=require(process.argv[1]);const d=j.lastRun.experts.decode,t=j.lastRun.generatedTokens;console.log(`tg ${j.tg.tokPerSec.map((v)=>v.toFixed(2))} tok/s; a token: gpu ${(d.gpuHits/t).toFixed(1)}, uploads ${(d.gpuMisses/t).toFixed(1)}, admitted ${(d.gpuAdmits/t).toFixed(1)}, cpu ${(d.gpuHostRuns/t).toFixed(1)}`)' "$OUT/split-$mode-$round.json" 2>&1)"
  done
done
kill $SMI
# The default split under --cpu-prof (NOPROF=1: not): a3b-8L with EIGHT=1, else a3b.
if [ -n "${NOPROF:-}" ]; then :
elif [ -n "${EIGHT:-}" ]; then P=(bench -m "$M8" --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 24 )) -p 64 -n 64 -r 1 --json --gpu-misses cpu)
else P=("${B[@]}" --gpu-misses cpu); fi
[ -z "${NOPROF:-}" ] && { timeout 60 "$W/node" --cpu-prof --cpu-prof-dir="$OUT/prof" bin/moestream.cjs "${P[@]}" > "$OUT/split-prof.json" 2>> "$OUT/steps.log"; log "split (profiled) rc=$? $(grep -o '"tg":{[^}]*}' "$OUT/split-prof.json")"; }
for p in "$OUT"/prof/*.cpuprofile; do [ -f "$p" ] && "$W/node" "$REPO/scripts/cpu-profile.mjs" "$p" 30 1000 >> "$OUT/steps.log"; done
# Few files come back from the device: everything in one archive.
(cd "$OUT" && tar -czf all.tgz --exclude=all.tgz . && find . -type f ! -name all.tgz ! -name steps.log -delete)
