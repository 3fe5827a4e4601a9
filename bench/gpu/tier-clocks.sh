#!/usr/bin/env bash
# The GPU's clocks while the split tier decodes (a3b, 25% of the expert bytes on the GPU) against a resident decode:
# nvidia-smi samples SM clock, utilisation and power every 100 ms into smi.csv while the CLI's bench runs three
# repetitions of each (the first has no warm-up: llama-bench runs one). steps.log stamps each phase with the
# sampler's clock. Carried: .gpu (bench/gpu/pack-carry.sh). Results in $OUT: steps.log, and all.tgz with the rest.
set -uo pipefail
W=${W:-/tmp/moestream-tc}
source "$PWD/bench/gpu/common.sh"
enter_app
M=$W/a3b.gguf
gen_model "$M"; log "gen a3b rc=$?"
EXP=$(( 48 * 128 * 3 * 2048 * 768 * 9 / 16 ))  # a3b's Q4_K expert bytes
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu,power.draw,pstate --format=csv,noheader -lms 100 > "$OUT/smi.csv" 2>&1 &
SMI=$!
stamp() { log "$* at $(date +%H:%M:%S.%N | cut -c1-12)"; }
summary='const j=require(process.argv[1]);const d=j.lastRun.experts.decode,t=j.lastRun.generatedTokens;console.log(`tg ${j.tg.tokPerSec.map((v)=>v.toFixed(2))} tok/s pp ${j.pp.tokPerSec.map((v)=>v.toFixed(1))}; a token: gpu ${(d.gpuHits/t).toFixed(1)}, cpu ${(d.gpuHostRuns/t).toFixed(1)}`)'
run() {
  local name=$1; shift
  stamp "$name start"
  timeout 150 "$W/node" bin/moestream.cjs bench -m "$M" --backend webgpu --expert-io resident -p 64 -n 32 --json "$@" > "$OUT/$name.json" 2>> "$OUT/steps.log"
  stamp "$name end rc=$? $("$W/node" -e "$summary" "$OUT/$name.json" 2>&1)"
}
overlap() {
  stamp "overlap start"
  timeout 120 "$W/node" dist-bench/bench/main.js gpu --quick --only=none --model="$M" --split=0.25 > "$OUT/overlap.log" 2>&1
  stamp "overlap end rc=$? $(grep -E 'split tier at|its host' "$OUT/overlap.log" | tr '\n' ' ')"
}
# OVERLAP_FIRST=1: bench gpu's split tier first (where the call may not last for all).
[ -n "${OVERLAP_FIRST:-}" ] && overlap
for round in $(seq 1 "${ROUNDS:-1}"); do
  run split-$round --gpu-expert-cache $(( EXP / 4 )) --gpu-misses cpu -r "${REPS:-3}"
  [ -z "${ONLY_SPLIT:-}" ] && run resident-$round -r 3
done
[ -z "${OVERLAP_FIRST:-}" ] && overlap
kill $SMI
awk -F', ' '{ c[$2]++ } END { for (k in c) print "  sm clock " k ": " c[k] " samples" }' "$OUT/smi.csv" | sort -t: -k2 -n | tail -12 | tee -a "$OUT/steps.log"
(cd "$OUT" && tar -czf all.tgz --exclude=all.tgz . && find . -type f ! -name all.tgz ! -name steps.log ! -name smi.csv -delete)
