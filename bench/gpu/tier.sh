#!/usr/bin/env bash
# The GPU expert tier on a GPU machine without Node.js or network (issue 14): a3b-8L (Qwen3-30B-A3B layer
# shapes, 8 layers, experts Q4_K, real-like routing) run with --backend webgpu, every expert resident on the GPU,
# then with a GPU tier of 25% of the expert bytes fed from a host cache holding them all: decode tok/s, the
# tier's hit shares and upload rate (--stats-json). Carried: .gpu/node.xz, .gpu/app.tar.xz (bench/gpu/pack-carry.sh
# makes them with the Vulkan loader and GLVND .debs in .gpu/debs; the device README's .gl/*.deb serve too). Results under $OUT (or ./gpu-out).
set -uo pipefail
W=${W:-/tmp/moestream-tier}
source "$PWD/bench/gpu/common.sh"
enter_app
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
N="$W/node bin/moestream.cjs"
MODEL=$W/a3b-8L.gguf
gen_model_8l "$MODEL"
log "gen rc=$? $(du -h "$MODEL" | cut -f1)"
ARGS=(-m "$MODEL" --backend webgpu -p "The quick brown fox jumps over the lazy dog and" -n 48 --temp 0 --ignore-eos --ctx-size 256 --prefetch off)
timeout 240 $N run "${ARGS[@]}" --stats-json "$OUT/resident.json" > "$OUT/resident.txt" 2>&1; log "resident rc=$?"
EXPERTS=$("$W/node" -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(s.expertCache.gpu.bytes)' "$OUT/resident.json")
timeout 240 $N run "${ARGS[@]}" --expert-io resident --gpu-expert-cache $(( EXPERTS / 4 )) --stats-json "$OUT/tier25.json" > "$OUT/tier25.txt" 2>&1; log "tier 25% rc=$?"
tail -n 3 "$OUT"/resident.txt "$OUT"/tier25.txt
