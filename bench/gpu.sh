#!/usr/bin/env bash
# GPU check on a lent GPU machine (PyTorch installed, no Node). Prepare with `bash bench/gpu-pack.sh`,
# carry .cache/gpu-pack, then run `bash bench/gpu.sh` from the repository root. In one call it prints:
#   1. the GPU (nvidia-smi) and the Dawn adapter found;
#   2. WebGPU parity on the small fixtures (t5, clip, vae, maf, dit) and full-size timings with random
#      weights (one DiT forward with CFG, 24 layers; a 10 s VAE decode; a 10 s generation ≈ STEPS × DiT + VAE),
#      once on tfjs' kernels and once on ours (AUDIOX_WEBGPU_KERNELS=1);
#   3. each of our kernels (GEMM, fused attention, layer norm) against tfjs' on the same inputs;
#   4. PyTorch on the same GPU (fp32), when it is installed;
# and writes the table to $OUT/gpu-table.md (or .cache/gpu-results/). SIZE=small (a software adapter:
# small models and kernel shapes, LAYERS=2 STEPS=10 by default) checks the script end to end without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=.cache/gpu-pack
SIZE=${SIZE:-full}
if [ "$SIZE" = small ]; then STEPS=${STEPS:-10}; LAYERS=${LAYERS:-2}; else STEPS=${STEPS:-100}; LAYERS=${LAYERS:-24}; fi
RESULTS=${OUT:-.cache/gpu-results}
mkdir -p "$RESULTS"
LOGS=$(mktemp -d)
unxz() { python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$1" "$2"; }
[ -x "$PACK/node" ] || { unxz "$PACK/node.xz" "$PACK/node" && chmod +x "$PACK/node"; }
D="$PACK/node_modules/webgpu/dist/linux-x64"
[ -f "$D/dawn.node" ] || unxz "$D/dawn.node.xz" "$D/dawn.node"
# The carried Vulkan loader and glvnd dispatch come after the system's own (if any) in the search order.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/nvidia/lib64:$PWD/$PACK/lib"
if [ "$SIZE" != small ]; then export AUDIOX_DAWN_BACKEND=${AUDIOX_DAWN_BACKEND:-vulkan}; fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null; ldconfig -p | grep -E 'libvulkan|libGLX_nvidia|libEGL_nvidia' || echo "no Vulkan loader / NVIDIA GL libraries visible"
for k in 0 1; do
  echo "== WebGPU (Dawn; AUDIOX_DAWN_BACKEND=${AUDIOX_DAWN_BACKEND:-default}; our kernels: $k)"
  (cd "$PACK" && AUDIOX_WEBGPU_KERNELS=$k timeout 600 ./node gpu-check.mjs --fixtures fixtures --steps "$STEPS" --layers "$LAYERS" --size "$SIZE" 2>&1 \
    | grep -v '^Warning' | tee "$LOGS/check-$k.txt" | tail -40) || echo "WebGPU check failed or timed out"
done
echo "== our kernels vs tfjs' (best of 3 each, same inputs)"
(cd "$PACK" && timeout 600 ./node webgpu-kernels.mjs --size "$SIZE" 2>&1 | grep -v '^Warning' | tee "$LOGS/kernels.txt" | tail -20) || echo "kernel timings failed or timed out"
echo "== PyTorch on the same GPU (fp32)"
if python3 -c 'import torch' 2>/dev/null; then
  for w in dit vae; do timeout 120 python3 bench/torch_baseline.py "$w" --layers "$LAYERS" --device cuda | tee "$LOGS/torch-$w.txt" || echo "torch $w failed"; done
else echo "PyTorch is not installed: no baseline"; fi
python3 - "$LOGS" "$STEPS" "$SIZE" > "$RESULTS/gpu-table.md" <<'PY'
import json, os, sys
logs, steps, size = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def last_json(name):
    try:
        lines = [l for l in open(os.path.join(logs, name)) if l.startswith('{')]
        return json.loads(lines[-1]) if lines else None
    except OSError:
        return None
stock, ours = last_json('check-0.txt'), last_json('check-1.txt')
torch = {w: last_json(f'torch-{w}.txt') for w in ('dit', 'vae')}
ms = lambda v: f'{v:.1f} ms' if isinstance(v, (int, float)) else '—'
ratio = lambda a, b: f'{a / b:.2f}' if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else '—'
g = lambda r, k: r.get(k) if r else None
print(f"adapter: {(g(stock, 'adapter') or {}).get('description', 'none')}; size: {size}; layers: {g(stock, 'layers')}")
print()
print("| | WebGPU, tfjs' kernels | WebGPU, our kernels | ours / tfjs' | PyTorch | tfjs' / PyTorch | ours / PyTorch |")
print('| --- | --- | --- | --- | --- | --- | --- |')
par = lambda r: f"{r['parity']['passed']}/{r['parity']['passed'] + r['parity']['failed']} pass" if r else '—'
print(f'| parity, small fixtures | {par(stock)} | {par(ours)} | — | — | — | — |')
for label, key, tk in (('DiT forward, CFG', 'ditMs', 'dit'), ('VAE decode', 'vaeMs', 'vae')):
    t = g(torch[tk], 'ms')
    a, b = g(stock, key), g(ours, key)
    print(f'| {label} | {ms(a)} | {ms(b)} | {ratio(b, a)} | {ms(t)} | {ratio(a, t)} | {ratio(b, t)} |')
gen = lambda r: steps * r['ditMs'] + r['vaeMs'] if r and 'ditMs' in r else None
tg = steps * torch['dit']['ms'] + torch['vae']['ms'] if torch['dit'] and torch['vae'] else None
print(f'| generation ≈ {steps} × DiT + VAE | {ms(gen(stock))} | {ms(gen(ours))} | {ratio(gen(ours), gen(stock))} | {ms(tg)} | {ratio(gen(stock), tg)} | {ratio(gen(ours), tg)} |')
print()
try:
    print(''.join(l for l in open(os.path.join(logs, 'kernels.txt')) if l.startswith('|')))
except OSError:
    print('kernel timings: none')
PY
echo "== table ($RESULTS/gpu-table.md)"; cat "$RESULTS/gpu-table.md"
rm -rf "$LOGS"
