# Shared by bench/gpu/*.sh (sourced, with W, the work dir, set first): unpacking the carried node binary and app,
# and the bench model. Expects OUT and REPO set and log() defined as well (start_run sets them).

# A script's start, run from the repository root: results in $OUT (./gpu-out unless set), $W/app made, REPO, and
# log() writing timed lines to $OUT/steps.log.
start_run() {
  OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
  mkdir -p "$W/app"
  REPO=$PWD
  T0=$(date +%s)
  log() { echo "[$(( $(date +%s) - T0 ))s $(date +%H:%M:%S)] $*" | tee -a "$OUT/steps.log"; }
}

# A tier script's start: start_run, the Vulkan loader and the app unpacked, then into $W/app (exits if no .debs).
enter_app() {
  start_run
  unpack_debs || exit 1
  unpack_app
  cd "$W/app" || exit 1
}

# node and the built project (dist/, dist-bench/, bin/, the native addon, production node_modules) into $W.
unpack_app() {
  if [ ! -x "$W/node" ]; then xz -dc "$REPO/.gpu/node.xz" > "$W/node.part" && chmod +x "$W/node.part" && mv "$W/node.part" "$W/node"; fi
  if [ ! -f "$W/app/.done" ]; then mkdir -p "$W/app" && tar -xJf "$REPO/.gpu/app.tar.xz" -C "$W/app" && touch "$W/app/.done"; fi
}

# The Vulkan loader and GLVND into / (the device image has neither, so Dawn finds no adapter without them): the
# .debs pack-carry.sh puts in .gpu/debs, or the device README's .gl/. Then NVIDIA's ICD and EGL vendor file.
unpack_debs() {
  local debs
  debs=$(ls "$REPO"/.gpu/debs/*.deb "$REPO"/.gl/*.deb 2> /dev/null || true)
  [ -n "$debs" ] || { log "no .gpu/debs/*.deb (nor .gl/*.deb): run bench/gpu/pack-carry.sh here first"; return 1; }
  for f in $debs; do dpkg -x "$f" /; done
  ldconfig
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
  if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
}

# The a3b model (Qwen3-30B-A3B shapes, 48 layers): experts Q4_K sampled directly, real-like routing, dense
# Q8_0 (the JS Q4_K quantiser needs ~8 CPU-minutes for them), a peaked output projection so greedy tokens have
# clear margins (the webgpu bench compares them with the CPU backend's). Written once per machine.
MODEL_DEFAULT="$W/a3b-q8_0-experts-q4_k-real-like-peaked.gguf"
gen_model() {
  gen_once "$1" --preset a3b --type Q8_0 --expert-type Q4_K --routing real-like --expert-synthesis direct --peaked 4 --seed 1
}
# a3b-8L (a3b's layer shapes, 8 layers: a few GB written in seconds), as the tier scripts run it.
gen_model_8l() {
  gen_once "$1" --preset a3b-8L --type Q8_0 --expert-type Q4_K --routing real-like --expert-synthesis direct --seed 1
}
# `moestream gen ARGS` into FILE unless it is there (a generated model depends on its arguments only).
gen_once() {
  local m=$1
  shift
  [ -f "$m" ] && return 0
  ( cd "$W/app" && "$W/node" bin/moestream.cjs gen "$@" -o "$m.part" ) > "$OUT/gen.log" 2>&1 && mv "$m.part" "$m"
}
