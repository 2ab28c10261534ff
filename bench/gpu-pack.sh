#!/usr/bin/env bash
# Builds .cache/gpu-pack/ (git-ignored, < 64 MiB) for bench/gpu.sh on a GPU machine that has PyTorch but
# no Node: an xz-compressed copy of this Node binary, bench/gpu-check.ts and bench/webgpu-kernels.ts bundled with esbuild (tfjs and
# the WebGPU backend included), the `webgpu` package's Dawn binding for linux-x64, and the small parity
# fixtures. Run from the repository root after `npm install` (needs the optional webgpu packages).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.cache/gpu-pack
FIXTURES=${AUDIOX_FIXTURES:-../shared/fixtures}
rm -rf "$OUT" && mkdir -p "$OUT/node_modules/webgpu/dist/linux-x64" "$OUT/fixtures"
node_modules/.bin/esbuild bench/gpu-check.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$OUT/gpu-check.mjs" --log-level=warning \
  --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# The per-kernel timings (ours vs tfjs'), bundled the same way.
node_modules/.bin/esbuild bench/webgpu-kernels.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$OUT/webgpu-kernels.mjs" --log-level=warning \
  --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$OUT/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$OUT/node_modules/webgpu/dist/linux-x64/"
xz -T0 -9 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$OUT/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
rm "$OUT/node_modules/webgpu/dist/linux-x64/dawn.node"
# The backend is bundled; a marker package lets the backend probe (require.resolve) see it as installed.
mkdir -p "$OUT/node_modules/@tensorflow/tfjs-backend-webgpu"
echo '{"name":"@tensorflow/tfjs-backend-webgpu","main":"index.js","note":"bundled into gpu-check.mjs"}' > "$OUT/node_modules/@tensorflow/tfjs-backend-webgpu/package.json"
echo '' > "$OUT/node_modules/@tensorflow/tfjs-backend-webgpu/index.js"
for c in t5 clip vae maf dit; do cp -r "$FIXTURES/$c" "$OUT/fixtures/"; done
xz -T0 -9 -c "$(command -v node)" > "$OUT/node.xz"
# GPU containers often ship the NVIDIA driver's Vulkan ICD (libGLX_nvidia) without the Vulkan loader and
# glvnd's dispatch library it needs; carry both from this machine's Debian packages (libvulkan1, libglvnd0, libegl1).
mkdir -p "$OUT/lib"
for l in libvulkan.so.1 libGLdispatch.so.0 libEGL.so.1; do
  f=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ {print $NF}' | sed -n 1p)
  if [ -n "$f" ]; then cp -L "$f" "$OUT/lib/"; else echo "warning: $l not found (apt-get install libvulkan1 libglvnd0 libegl1)"; fi
done
du -sh "$OUT"; du -sh "$OUT"/* "$OUT/node_modules/webgpu/dist/linux-x64/"*
