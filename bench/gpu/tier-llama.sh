#!/usr/bin/env bash
# Issue 14's GPU-tier bar on one host, in one call: llama.cpp CUDA with -ncmoe 36 (the experts of 36 of a3b's 48
# layers on the CPU, so 25% of the expert bytes on the GPU) against moestream's split tier at 25% of the expert
# bytes (--gpu-misses cpu with the defaults, and --gpu-admit 1, or OURS's variants; two repetitions after bench's warm-up, as llama-bench's), on the same
# GGUF, alternating, two rounds each, with nvidia-smi sampling the GPU's clocks meanwhile (smi.csv). llama-bench builds from the
# source node-llama-cpp ships (nice 19) while the model is written, and runs only once built (~4.5 min of build).
# Hosts differ call to call (session 17): a ratio is only worth what both sides measured on one host. Carried:
# .gpu (bench/gpu/pack-carry.sh). CPUMOE=1 also times every expert on the CPU (--cpu-moe against -ncmoe 48).
# Results in $OUT: steps.log (both sides' tok/s), and all.tgz holding the rest.
set -uo pipefail
W=${W:-/tmp/moestream-tl}
source "$PWD/bench/gpu/common.sh"
enter_app
mkdir -p "$W/llama" && tar -xJf "$REPO/.gpu/llama-src.tar.xz" -C "$W/llama"
( nice -n 19 cmake -S "$W/llama" -B "$W/llama/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
  && nice -n 19 cmake --build "$W/llama/build" --target llama-bench -j 14 ) > "$OUT/build.log" 2>&1 &
BUILD=$!
M=$W/a3b.gguf
gen_model "$M"; log "gen a3b rc=$?"
wait $BUILD; log "llama-bench build rc=$?"
# The GPU's clocks every 100 ms through both sides' runs (smi.csv; steps.log's lines carry the same clock).
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu,power.draw,pstate --format=csv,noheader -lms 100 > "$OUT/smi.csv" 2>&1 &
SMI=$!
LB=$W/llama/build/bin/llama-bench
EXP=$(( 48 * 128 * 3 * 2048 * 768 * 9 / 16 ))  # a3b's Q4_K expert bytes
for round in 1 2; do
  timeout 120 "$LB" -m "$M" -ngl 99 -ncmoe 36 -p 64 -n 32 -r 2 -o md 2> /dev/null | grep "^|" > "$OUT/llama-$round.md"
  log "llama.cpp -ncmoe 36 round $round rc=$? $(grep -E 'tg32' "$OUT/llama-$round.md" | tr -s ' ')"
  # Ours as OURS says, label=flags (comma-separated) each: by default --gpu-admit inf (the default), then admitting
  # at 1x (admissions uploaded in the background, session 19). GAP seconds before each (a CUDA context's clock
  # outlives it by seconds: s20a).
  for v in ${OURS:-inf=--gpu-admit,inf admit1=--gpu-admit,1}; do
    admit=${v%%=*}
    IFS=, read -ra FL <<< "${v#*=}"
    sleep "${GAP:-0}"
    timeout 90 "$W/node" bin/moestream.cjs bench -m "$M" --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) --gpu-misses cpu "${FL[@]}" -p 64 -n 32 -r 2 --json > "$OUT/split-$admit-$round.json" 2>> "$OUT/steps.log"
    log "moestream split tier 25% $admit (${FL[*]}) round $round rc=$? $("$W/node" -e 'const j=require(process.argv[1]);const d=j.lastRun.experts.decode,t=j.lastRun.generatedTokens;console.log(`tg ${j.tg.tokPerSec.map((v)=>v.toFixed(2))} tok/s; a token: gpu ${(d.gpuHits/t).toFixed(1)}, uploads ${(d.gpuMisses/t).toFixed(1)}, admitted ${(d.gpuAdmits/t).toFixed(1)}, cpu ${(d.gpuHostRuns/t).toFixed(1)}`)' "$OUT/split-$admit-$round.json" 2>&1)"
  done
done
# CPUMOE=1: every routed expert on the CPU beside the GPU, ours (--cpu-moe, with CPUMOE_FLAGS) against llama.cpp's
# -ncmoe 48 (all of a3b's layers), alternating, two rounds.
if [ -n "${CPUMOE:-}" ]; then
  for round in 1 2; do
    timeout 120 "$LB" -m "$M" -ngl 99 -ncmoe 48 -p 64 -n 32 -r 2 -o md 2> /dev/null | grep "^|" > "$OUT/llama-cpumoe-$round.md"
    log "llama.cpp -ncmoe 48 round $round rc=$? $(grep -E 'tg32' "$OUT/llama-cpumoe-$round.md" | tr -s ' ')"
    sleep "${GAP:-0}"
    timeout 90 "$W/node" bin/moestream.cjs bench -m "$M" --backend webgpu --expert-io resident --cpu-moe ${CPUMOE_FLAGS:-} -p 64 -n 32 -r 2 --json > "$OUT/cpumoe-$round.json" 2>> "$OUT/steps.log"
    log "moestream --cpu-moe ${CPUMOE_FLAGS:-} round $round rc=$? $("$W/node" -e 'const j=require(process.argv[1]);console.log(`tg ${j.tg.tokPerSec.map((v)=>v.toFixed(2))} tok/s`)' "$OUT/cpumoe-$round.json" 2>&1)"
  done
fi
# OVERLAP=1: then bench gpu's split tier (addLater vs awaited vs one submission), with its host timing counters.
# The defaults, then --gpu-admit 1 (bench gpu's --admit): overlap.log and overlap-admit1.log.
if [ -n "${OVERLAP:-}" ]; then
  for a in "" 1; do
    timeout 120 "$W/node" dist-bench/bench/main.js gpu --quick --only=none --model="$M" --split=0.25 ${a:+--admit=$a} > "$OUT/overlap${a:+-admit$a}.log" 2>&1
    log "overlap${a:+ --admit=$a} rc=$? $(grep -E 'split tier at|its host' "$OUT/overlap${a:+-admit$a}.log" | tr '\n' ' ')"
  done
fi
kill $SMI
(cd "$OUT" && tar -czf all.tgz --exclude=all.tgz . && find . -type f ! -name all.tgz ! -name steps.log -delete)
