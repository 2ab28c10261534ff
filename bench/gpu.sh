#!/usr/bin/env bash
# GPU check on a lent GPU machine (PyTorch installed, no Node). Prepare with `bash bench/gpu-pack.sh`,
# carry .cache/gpu-pack, then run `bash bench/gpu.sh` from the repository root. Prints:
#   1. the GPU (nvidia-smi) and the Dawn adapter found;
#   2. WebGPU parity on the small fixtures (t5, clip, vae, maf, dit);
#   3. full-size timings with random weights, WebGPU vs PyTorch on the same GPU (fp32): one DiT
#      forward with CFG (24 layers) and a 10 s VAE decode; a 10 s generation ≈ STEPS × DiT + VAE.
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=.cache/gpu-pack
STEPS=${STEPS:-100}
unxz() { python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$1" "$2"; }
[ -x "$PACK/node" ] || { unxz "$PACK/node.xz" "$PACK/node" && chmod +x "$PACK/node"; }
D="$PACK/node_modules/webgpu/dist/linux-x64"
[ -f "$D/dawn.node" ] || unxz "$D/dawn.node.xz" "$D/dawn.node"
# The carried Vulkan loader and glvnd dispatch come after the system's own (if any) in the search order.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/nvidia/lib64:$PWD/$PACK/lib"
export AUDIOX_DAWN_BACKEND=${AUDIOX_DAWN_BACKEND:-vulkan}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null; ldconfig -p | grep -E 'libvulkan|libGLX_nvidia|libEGL_nvidia' || echo "no Vulkan loader / NVIDIA GL libraries visible"
echo "== WebGPU (Dawn; AUDIOX_DAWN_BACKEND=$AUDIOX_DAWN_BACKEND)"
(cd "$PACK" && timeout 300 ./node gpu-check.mjs --fixtures fixtures --steps "$STEPS" 2>&1 | grep -v '^Warning' | tail -40) || echo "WebGPU check failed or timed out"
echo "== PyTorch on the same GPU (fp32)"
for w in dit vae; do timeout 120 python3 bench/torch_baseline.py "$w" --layers 24 --device cuda || echo "torch $w failed"; done
