# Shared by bench/gpu/*.sh (sourced): unpacking the carried node binary and app, and the bench model.
# Expects OUT, W (work dir) and REPO set, and log() defined.

# node and the built project (dist/, dist-bench/, bin/, the native addon, production node_modules) into $W.
unpack_app() {
  if [ ! -x "$W/node" ]; then xz -dc "$REPO/.gpu/node.xz" > "$W/node.part" && chmod +x "$W/node.part" && mv "$W/node.part" "$W/node"; fi
  if [ ! -f "$W/app/.done" ]; then mkdir -p "$W/app" && tar -xJf "$REPO/.gpu/app.tar.xz" -C "$W/app" && touch "$W/app/.done"; fi
}

# The a3b model (Qwen3-30B-A3B shapes, 48 layers): experts Q4_K sampled directly, real-like routing, dense
# Q8_0 (the JS Q4_K quantiser needs ~8 CPU-minutes for them), a peaked output projection so greedy tokens have
# clear margins (the webgpu bench compares them with the CPU backend's). Written once per machine.
MODEL_DEFAULT="$W/a3b-q8_0-experts-q4_k-real-like-peaked.gguf"
gen_model() {
  local m=$1
  [ -f "$m" ] && return 0
  ( cd "$W/app" && "$W/node" bin/moestream.cjs gen --preset a3b --type Q8_0 --expert-type Q4_K --routing real-like \
      --expert-synthesis direct --peaked 4 --seed 1 -o "$m.part" ) > "$OUT/gen.log" 2>&1 && mv "$m.part" "$m"
}
