#!/usr/bin/env python3
"""PyTorch CPU (or CUDA) baseline for `npm run bench`: the same five workloads, same shapes, fp32,
random weights, written from docs/REFERENCE.md §2–§5, not the reference package.

Usage: python3 bench/torch_baseline.py WORKLOAD [--layers N] [--runs N] [--device cpu|cuda]
Prints one JSON line: {"workload", "ms" (best of runs), "peak_bytes", "threads", "torch", "device"}.
For dit/mmdit, `ms` is the time of an N-layer forward; the caller extrapolates to 24 layers exactly as
for the TypeScript side.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


# ---- DiT (§2): 1536 wide, 24 heads of 64, context 768, SwiGLU 4x, rotary on half of each head ----
class DiTLayer(nn.Module):
    def __init__(s, d=1536, h=24, c=768):
        super().__init__()
        s.h, s.d = h, d
        s.norm1, s.norm2, s.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        s.qkv = nn.Linear(d, 3 * d, bias=False)
        s.out1 = nn.Linear(d, d, bias=False)
        s.q = nn.Linear(d, d, bias=False)
        s.kv = nn.Linear(c, 2 * c, bias=False)
        s.out2 = nn.Linear(d, d, bias=False)
        s.ff1 = nn.Linear(d, 8 * d)
        s.ff2 = nn.Linear(4 * d, d)

    def attn(s, q, k, v):  # [B, L, H·dh] → SDPA with grouped kv heads
        b, lq, _ = q.shape
        dh = s.d // s.h
        q = q.view(b, lq, s.h, dh).transpose(1, 2)
        kvh = k.shape[-1] // dh
        k = k.view(b, -1, kvh, dh).transpose(1, 2).repeat_interleave(s.h // kvh, 1)
        v = v.view(b, -1, kvh, dh).transpose(1, 2).repeat_interleave(s.h // kvh, 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), -1) @ v
        return a.transpose(1, 2).reshape(b, lq, s.d)

    def forward(s, x, ctx, cos, sin):
        q, k, v = s.qkv(s.norm1(x)).chunk(3, -1)
        q, k = rotary(q, cos, sin, s.h), rotary(k, cos, sin, s.h)
        x = x + s.out1(s.attn(q, k, v))
        k2, v2 = s.kv(ctx).chunk(2, -1)
        x = x + s.out2(s.attn(s.q(s.norm2(x)), k2, v2))
        a, g = s.ff1(s.norm3(x)).chunk(2, -1)
        return x + s.ff2(a * F.silu(g))


def rotary(t, cos, sin, h):  # rotate the first 32 channels of each 64-d head (NeoX half rotation)
    b, l, d = t.shape
    t = t.view(b, l, h, d // h)
    r, p = t[..., :32], t[..., 32:]
    r1, r2 = r[..., :16], r[..., 16:]
    r = r * cos + torch.cat([-r2, r1], -1) * sin
    return torch.cat([r, p], -1).view(b, l, d)


def dit(layers, b=2, t=237, s=384):
    m = nn.ModuleList(DiTLayer() for _ in range(layers))
    cond = nn.Sequential(nn.Linear(768, 768, bias=False), nn.SiLU(), nn.Linear(768, 768, bias=False))
    proj_in, proj_out = nn.Linear(64, 1536, bias=False), nn.Linear(1536, 64, bias=False)
    x, c = torch.randn(b, t, 64), torch.randn(b, s, 768)
    inv = 10000 ** (-torch.arange(0, 32, 2).float() / 32)
    fr = torch.arange(t).float()[:, None] * inv[None]
    fr = torch.cat([fr, fr], -1)[None, :, None, :]
    cos, sin = fr.cos(), fr.sin()

    def run():
        h, ctx = proj_in(x), cond(c)
        for layer in m:
            h = layer(h, ctx, cos, sin)
        return proj_out(h)

    return run


# ---- MMDiT (§3): 64 heads of 24, per-token adaLN, k=3 token convs, RMS q/k norm ----
class MMLayer(nn.Module):
    def __init__(s, d=1536, nh=64, hf=4096):
        super().__init__()
        s.d, s.nh = d, nh
        s.ada = nn.Linear(d, 6 * d)
        s.qkv = nn.Linear(d, 3 * d)
        s.lin1 = nn.Conv1d(d, d, 3, padding=1)
        s.q = nn.Linear(d, d, bias=False)
        s.kv = nn.Linear(d, 2 * d, bias=False)
        s.w1 = nn.Conv1d(d, hf, 3, padding=1, bias=False)
        s.w2 = nn.Conv1d(hf, d, 3, padding=1, bias=False)
        s.w3 = nn.Conv1d(d, hf, 3, padding=1, bias=False)

    def forward(s, x, m, tc):
        b, l, d = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = s.ada(F.silu(m)).chunk(6, -1)
        y = F.layer_norm(x, (d,)) * (1 + sc1) + sh1
        qkv = s.qkv(y).view(b, l, s.nh, d // s.nh, 3)
        rms = lambda t: t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6)
        q, k, v = (qkv[..., i].transpose(1, 2) for i in range(3))
        a = F.scaled_dot_product_attention(rms(q), rms(k), v) if hasattr(F, 'scaled_dot_product_attention') else \
            torch.softmax(rms(q) @ rms(k).transpose(-1, -2) / math.sqrt(d // s.nh), -1) @ v
        a = a.transpose(1, 2).reshape(b, l, d)
        x = x + s.lin1(a.transpose(1, 2)).transpose(1, 2) * g1
        kt = s.kv(tc).view(b, 1, s.nh, d // s.nh, 2)[..., 0]
        s.q(x)  # computed by the reference although a single context token makes the result independent of q
        x = x + rms(kt).reshape(b, 1, d)
        r = (F.layer_norm(x, (d,)) * (1 + sc2) + sh2).transpose(1, 2)
        return x + s.w2(F.silu(s.w1(r)) * s.w3(r)).transpose(1, 2) * g2


def mmdit(layers, b=2, t=237, s=384):
    m = nn.ModuleList(MMLayer() for _ in range(layers))
    proj_tok, proj_seq = nn.Linear(768, 1536), nn.Linear(s, t)
    proj_in, proj_out = nn.Linear(64, 1536, bias=False), nn.Linear(1536, 64, bias=False)
    x, c, tc = torch.randn(b, t, 64), torch.randn(b, s, 768), torch.randn(b, 1, 1536)

    def run():
        h = proj_in(x)
        mm = proj_seq(proj_tok(c).transpose(1, 2)).transpose(1, 2)
        for layer in m:
            h = layer(h, mm, tc)
        return proj_out(h)

    return run


# ---- Oobleck VAE decoder (§5.3), 10 s → 216 latents → 442368 samples ----
class Snake(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.a, s.b = nn.Parameter(torch.zeros(1, c, 1)), nn.Parameter(torch.zeros(1, c, 1))

    def forward(s, x):
        a, b = s.a.exp(), s.b.exp()
        return x + (1.0 / (b + 1e-9)) * torch.sin(a * x).pow(2)


class ResUnit(nn.Module):
    def __init__(s, c, d):
        super().__init__()
        s.f = nn.Sequential(Snake(c), nn.Conv1d(c, c, 7, dilation=d, padding=3 * d), Snake(c), nn.Conv1d(c, c, 1))

    def forward(s, x):
        return x + s.f(x)


def vae(latents=216):
    c = [128 * m for m in [1, 1, 2, 4, 8, 16]]
    layers = [nn.Conv1d(64, 2048, 7, padding=3)]
    for cin, cout, st in [(2048, 1024, 8), (1024, 512, 8), (512, 256, 4), (256, 128, 4), (128, 128, 2)]:
        layers += [Snake(cin), nn.ConvTranspose1d(cin, cout, 2 * st, stride=st, padding=math.ceil(st / 2))]
        layers += [ResUnit(cout, d) for d in (1, 3, 9)]
    layers += [Snake(128), nn.Conv1d(128, 2, 7, padding=3, bias=False)]
    dec = nn.Sequential(*layers)
    z = torch.randn(1, 64, latents)
    return lambda: dec(z)


# ---- T5-base encoder, 128 tokens ----
class T5Layer(nn.Module):
    def __init__(s, d=768, h=12, ff=3072):
        super().__init__()
        s.h = h
        s.n1, s.n2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
        s.q, s.k, s.v, s.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        s.wi, s.wo = nn.Linear(d, ff, bias=False), nn.Linear(ff, d, bias=False)

    def forward(s, x, bias):
        rms = lambda t, w: w * t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6)
        b, l, d = x.shape
        y = rms(x, s.n1)
        sp = lambda t: t.view(b, l, s.h, d // s.h).transpose(1, 2)
        a = torch.softmax(sp(s.q(y)) @ sp(s.k(y)).transpose(-1, -2) + bias, -1) @ sp(s.v(y))
        x = x + s.o(a.transpose(1, 2).reshape(b, l, d))
        return x + s.wo(F.relu(s.wi(rms(x, s.n2))))


def t5(tokens=128):
    emb = nn.Embedding(32128, 768)
    m = nn.ModuleList(T5Layer() for _ in range(12))
    ids = torch.randint(0, 32100, (1, tokens))
    bias = torch.randn(1, 12, tokens, tokens)

    def run():
        h = emb(ids)
        for layer in m:
            h = layer(h, bias)
        return h

    return run


# ---- CLIP ViT-B/32 vision tower, 50 frames ----
def clip(frames=50):
    patch = nn.Conv2d(3, 768, 32, stride=32, bias=False)
    enc = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, activation=lambda x: x * torch.sigmoid(1.702 * x),
                                   batch_first=True, norm_first=True), 12, enable_nested_tensor=False)
    pos, cls, ln = torch.randn(1, 50, 768), torch.randn(1, 1, 768), nn.LayerNorm(768)
    px = torch.randn(frames, 3, 224, 224)

    def run():
        p = patch(px).flatten(2).transpose(1, 2)
        h = torch.cat([cls.expand(frames, 1, 768), p], 1) + pos
        return enc(ln(h))

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('workload', choices=['dit', 'mmdit', 'vae', 't5', 'clip', 'matmul'])
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--runs', type=int, default=2)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)  # Debian's build may default to 1
    dev = torch.device(a.device)
    if a.workload == 'matmul':
        rows = []
        for m, k, n in [(1024, 1024, 1024), (474, 1536, 1536), (474, 1536, 6144), (474, 6144, 1536)]:
            x, y = torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)
            x @ y
            best = 1e9
            for _ in range(5):
                t0 = time.perf_counter()
                x @ y
                if dev.type == 'cuda':
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
            rows.append({'shape': f'{m}x{k}x{n}', 'ms': best * 1e3, 'gflops': 2 * m * k * n / best / 1e9})
        print(json.dumps({'workload': 'matmul', 'rows': rows, 'threads': torch.get_num_threads()}))
        return
    build = {'dit': lambda: dit(a.layers), 'mmdit': lambda: mmdit(a.layers), 'vae': vae, 't5': t5, 'clip': clip}
    torch.set_default_tensor_type(torch.cuda.FloatTensor if dev.type == 'cuda' else torch.FloatTensor)
    run = build[a.workload]()
    best = float('inf')
    with torch.inference_mode():
        run()  # warm-up
        for _ in range(a.runs):
            if dev.type == 'cuda':
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            run()
            if dev.type == 'cuda':
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({'workload': a.workload, 'ms': best * 1e3, 'peak_bytes': peak, 'threads': torch.get_num_threads(),
                      'torch': torch.__version__, 'device': str(dev), 'layers': a.layers}))


if __name__ == '__main__':
    sys.exit(main())
