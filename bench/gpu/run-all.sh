#!/usr/bin/env bash
# One device call (issue 14) [LEAN=1: a short call: profile, the split tier (short), then the end-to-end figures only]: the kernel table, a3b's decode profile (PROFILE=1: bench gpu --profile-only), the tier's split and upload runs (TIER=1; TIER=cpu: split only), a3b end
# to end on --backend webgpu (with the profile's fastest knobs, or TUNE=JSON), the GPU tier at 25% (TIER=1),
# and llama.cpp CUDA built and run on the same card unless it is the H100 kind measured before (or LLAMA=1; NOLLAMA=1: never).
# Run from the repository root on the GPU machine with .gpu/ carried (bench/gpu/pack-carry.sh makes it); results in $OUT.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
W=/tmp/mg; mkdir -p "$W/app" "$W/llama"
T0=$(date +%s); log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/steps.log"; }
for f in .gpu/debs/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
xz -T0 -dc .gpu/node.xz > "$W/node" && chmod +x "$W/node"
tar -xJf .gpu/app.tar.xz -C "$W/app"
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader); log "$GPU"
BUILD=
if [ -z "${NOLLAMA:-}" ] && { ! echo "$GPU" | grep -q "H100 80GB HBM3" || [ -n "${LLAMA:-}" ]; }; then
  tar -xJf .gpu/llama-src.tar.xz -C "$W/llama"
  ( nice -n 19 cmake -S "$W/llama" -B "$W/llama/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
    && nice -n 19 cmake --build "$W/llama/build" --target llama-bench -j 11 ) > "$W/build.log" 2>&1 &
  BUILD=$!
fi
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,pstate,utilization.gpu,power.draw --format=csv -lms 200 > "$OUT/clocks.csv" 2>&1 &
SMI=$!
MODEL=$W/a3b.gguf
cd "$W/app"; N="$W/node bin/moestream.cjs"
( $N gen --preset a3b --type Q8_0 --expert-type Q4_K --routing real-like --expert-synthesis direct --seed 1 -o "$MODEL" ) > "$W/gen.log" 2>&1 &
GEN=$!
# With PROFILE the kernel table runs once, after the end-to-end figures, with the knobs they used.
[ -z "${PROFILE:-}" ] && { timeout 100 "$W/node" dist-bench/bench/main.js gpu --json=$OUT/kernels.json > "$OUT/kernels.log" 2>&1; log "kernel bench rc=$?"; }
wait $GEN; log "gen rc=$? $(du -h $MODEL | cut -f1) $(tail -1 $W/gen.log)"
TUNE=${TUNE:-}
if [ -n "${PROFILE:-}" ]; then
  timeout 100 "$W/node" dist-bench/bench/main.js gpu --only=none --quick --profile-only --model=$MODEL --json=$OUT/profile.json > "$OUT/profile.log" 2>&1; log "profile rc=$?"
  # The profile's best knob variant (by decode wall time against the defaults, or by GPU time summed over its
  # dispatches), if it beats the defaults by 3%, runs the end-to-end figures and the kernel table.
  [ -z "$TUNE" ] && TUNE=$("$W/node" -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1])).sanity.profile;const c=[...Object.values(p.variants).map((v)=>[v.gpuMs/p.gpuMs,v.set]),...Object.values(p.wallVariants??{}).map((v)=>[v.variantMs/v.baseMs,v.set])].sort((a,b)=>a[0]-b[0])[0];if(c&&c[0]<0.97)console.log(JSON.stringify(c[1]))' "$OUT/profile.json" 2>>"$OUT/steps.log")
  log "tune: ${TUNE:-defaults}"
fi
EXP=16307453952
[ -n "${LEAN:-}" ] && { timeout 70 $N bench -m $MODEL --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) --gpu-misses cpu -p 64 -n 32 -r 1 --json > "$OUT/webgpu-tier25-cpu.json" 2>>"$OUT/steps.log"; log "webgpu tier25 cpu (lean) rc=$?"; }
timeout 150 "$W/node" dist-bench/bench/main.js gpu --only=none --model=$MODEL --json=$OUT/webgpu.json ${TUNE:+--tune="$TUNE"} > "$OUT/webgpu.log" 2>&1; log "gpu bench rc=$? ${TUNE:+tuned $TUNE}"
[ -n "${LEAN:-}" ] && { kill $SMI; log "done (lean)"; exit 0; }
# The split tier: the experts not on the GPU run on the CPU (llama.cpp -ncmoe's way).
[ -n "${TIER:-}" ] && timeout 100 $N bench -m $MODEL --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) --gpu-misses cpu -p 128 -n 64 -r 1 --json > "$OUT/webgpu-tier25-cpu.json" 2>>"$OUT/steps.log"; log "webgpu tier25 cpu rc=$?"
[ -n "${TIER:-}" ] && [ "$TIER" != cpu ] && timeout 100 $N bench -m $MODEL --backend webgpu --expert-io resident --gpu-expert-cache $(( EXP / 4 )) -p 128 -n 64 -r 1 --json > "$OUT/webgpu-tier25.json" 2>>"$OUT/steps.log"; log "webgpu tier25 rc=$?"
# Last: the kernel table (with PROFILE, the knobs the end-to-end figures used).
[ -n "${PROFILE:-}" ] && { timeout 90 "$W/node" dist-bench/bench/main.js gpu --json=$OUT/kernels.json ${TUNE:+--tune="$TUNE"} > "$OUT/kernels.log" 2>&1; log "kernel bench rc=$? ${TUNE:+tuned}"; }
if [ -n "$BUILD" ]; then
  wait $BUILD; log "build rc=$?"; tail -3 "$W/build.log" > "$OUT/build-tail.log"
  B=$W/llama/build/bin/llama-bench
  timeout 50 $B -m $MODEL -ngl 99 -p 512 -n 128 -r 3 -o md 2>/dev/null | grep "^|" | tee -a "$OUT/steps.log"
  timeout 50 $B -m $MODEL -ngl 99 -ncmoe 36 -t 16 -p 128 -n 64 -r 2 -o md 2>/dev/null | grep "^|" | tee -a "$OUT/steps.log"
fi
kill $SMI; log done
