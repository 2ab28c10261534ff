#!/usr/bin/env python3
"""PyTorch CPU (or CUDA) baseline for `npm run bench`: the same workloads, same shapes, fp32,
random weights, written from docs/REFERENCE.md §1–§6, not the reference package.

Usage: python3 bench/torch_baseline.py WORKLOAD [--layers N] [--runs N] [--device cpu|cuda] [--sync-frames 250]
       python3 bench/torch_baseline.py e2e --weights a.safetensors,b.safetensors [--steps 25] [--latents 236]
           [--context 1979] [--decode-latents N]
Prints one JSON line: {"workload", "ms" (best of runs), "peak_bytes", "threads", "torch", "device"}.
For dit/mmdit, `ms` is the time of an N-layer forward; the caller extrapolates to 24 layers exactly as
for the TypeScript side. `e2e` prints the phase times of one generation instead (see e2e()).
"""
import argparse
import json
import mmap
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


class DiT(nn.Module):
    def __init__(s, layers):
        super().__init__()
        s.layers = nn.ModuleList(DiTLayer() for _ in range(layers))
        s.cond = nn.Sequential(nn.Linear(768, 768, bias=False), nn.SiLU(), nn.Linear(768, 768, bias=False))
        s.proj_in, s.proj_out = nn.Linear(64, 1536, bias=False), nn.Linear(1536, 64, bias=False)


def dit(layers, b=2, t=237, s=384, net=None):
    net = net or DiT(layers)
    m, cond, proj_in, proj_out = net.layers, net.cond, net.proj_in, net.proj_out
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


def vae_decoder():
    layers = [nn.Conv1d(64, 2048, 7, padding=3)]
    for cin, cout, st in [(2048, 1024, 8), (1024, 512, 8), (512, 256, 4), (256, 128, 4), (128, 128, 2)]:
        layers += [Snake(cin), nn.ConvTranspose1d(cin, cout, 2 * st, stride=st, padding=math.ceil(st / 2))]
        layers += [ResUnit(cout, d) for d in (1, 3, 9)]
    layers += [Snake(128), nn.Conv1d(128, 2, 7, padding=3, bias=False)]
    return nn.Sequential(*layers)


def vae(latents=216, dec=None):
    dec = dec or vae_decoder()
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


class T5(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(32128, 768)
        s.layers = nn.ModuleList(T5Layer() for _ in range(12))


def t5(tokens=128, net=None):
    net = net or T5()
    emb, m = net.emb, net.layers
    ids = torch.randint(0, 32100, (1, tokens))
    bias = torch.randn(1, 12, tokens, tokens)

    def run():
        h = emb(ids)
        for layer in m:
            h = layer(h, bias)
        return h

    return run


# ---- CLIP ViT-B/32 vision tower, 50 frames ----
class CLIPVision(nn.Module):
    def __init__(s):
        super().__init__()
        s.patch = nn.Conv2d(3, 768, 32, stride=32, bias=False)
        s.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, activation=lambda x: x * torch.sigmoid(1.702 * x),
                                       batch_first=True, norm_first=True), 12, enable_nested_tensor=False)
        s.pos, s.cls = nn.Parameter(torch.randn(1, 50, 768)), nn.Parameter(torch.randn(1, 1, 768))
        s.ln = nn.LayerNorm(768)

    def forward(s, px):  # [N, 3, 224, 224] → last_hidden_state [N, 50, 768]
        p = s.patch(px).flatten(2).transpose(1, 2)
        h = torch.cat([s.cls.expand(px.shape[0], 1, 768), p], 1) + s.pos
        return s.enc(s.ln(h))


def clip(frames=50, net=None):
    net = net or CLIPVision()
    px = torch.randn(frames, 3, 224, 224)
    return lambda: net(px)


def attend(q, k, v):  # heads-first [.., L, d]: softmax(q kᵀ / √d) v, with PyTorch's fused kernel where it has one
    if hasattr(F, 'scaled_dot_product_attention'):
        return F.scaled_dot_product_attention(q, k, v)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v


# ---- Synchformer video branch (§6): MotionFormer, divided space-time attention, 16-frame segments ----
class DividedAttention(nn.Module):
    def __init__(s, d=768, h=12):
        super().__init__()
        s.h = h
        s.qkv, s.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(s, x, axis, f=8, p=196):
        n, l, d = x.shape
        h, hd = s.h, d // s.h
        q, k, v = s.qkv(x).view(n, l, 3, h, hd).permute(2, 0, 3, 1, 4)  # [N, H, L, hd] each
        cls_out = attend(q[:, :, :1], k, v)  # the CLS query sees all 1 + F·P keys
        g, sl = (p, f) if axis == 'time' else (f, p)

        def group(t):  # patch tokens → [N·H, G, S, hd]: time '(b n) f d', space '(b f) n d'
            t = t[:, :, 1:].reshape(n, h, f, p, hd)
            return (t.transpose(2, 3) if axis == 'time' else t).reshape(n * h, g, sl, hd)

        def with_cls(t):  # the CLS key / value prepended to every group
            return torch.cat([t[:, :, :1].reshape(n * h, 1, 1, hd).expand(n * h, g, 1, hd), group(t)], 2)

        out = attend(group(q), with_cls(k), with_cls(v)).reshape(n, h, g, sl, hd)
        if axis == 'time':
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.reshape(n, h, f * p, hd)], 2)
        return s.proj(out.transpose(1, 2).reshape(n, l, d))


class SpaceTimeBlock(nn.Module):
    def __init__(s, d=768):
        super().__init__()
        s.norm1, s.norm2, s.norm3 = (nn.LayerNorm(d, eps=1e-6) for _ in range(3))
        s.attn, s.timeattn = DividedAttention(d), DividedAttention(d)
        s.fc1, s.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(s, x):
        x = x + s.timeattn(s.norm3(x), 'time')
        x = x + s.attn(s.norm1(x), 'space')
        return x + s.fc2(F.gelu(s.fc1(s.norm2(x))))


class MotionFormer(nn.Module):
    def __init__(s, d=768):
        super().__init__()
        s.patch = nn.Conv3d(3, d, (2, 16, 16), stride=(2, 16, 16))
        s.cls, s.pos, s.temp = (nn.Parameter(torch.randn(*sh) * 0.02) for sh in ([1, 1, d], [1, 197, d], [1, 8, d]))
        s.blocks = nn.ModuleList(SpaceTimeBlock(d) for _ in range(12))
        s.norm = nn.LayerNorm(d, eps=1e-6)
        # spatial_attn_agg: TransformerEncoderLayer(norm_first, GELU, eps 1e-6) with its own CLS token.
        s.agg_cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        s.agg_norm1, s.agg_norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        s.agg_attn = nn.MultiheadAttention(d, 12, batch_first=True)
        s.agg_lin1, s.agg_lin2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(s, x):  # segments [N, 16, 3, 224, 224] → [N, 8, 768]
        n, d = x.shape[0], s.cls.shape[-1]
        tok = s.patch(x.permute(0, 2, 1, 3, 4)).flatten(2).transpose(1, 2)  # [N, 1568, D], index t·196 + h·14 + w
        pos = (s.pos[:, None, 1:] + s.temp[:, :, None]).reshape(1, 8 * 196, d)  # token (t, n): pos[1 + n] + temp[t]
        h = torch.cat([(s.cls + s.pos[:, :1]).expand(n, 1, d), tok + pos], 1)
        for blk in s.blocks:
            h = blk(h)
        feats = s.norm(h[:, 1:]).reshape(n * 8, 196, d)
        # Only the CLS row of the aggregation layer's output is used: as ours, only its query row is computed
        # (keys and values over all 197 tokens), so both sides do the same FLOPs.
        cls = s.agg_cls.expand(n * 8, 1, d)
        y = s.agg_norm1(torch.cat([cls, feats], 1))
        y = cls + s.agg_attn(y[:, :1], y, y, need_weights=False)[0]
        y = y + s.agg_lin2(F.gelu(s.agg_lin1(s.agg_norm2(y))))
        return y.reshape(n, 8, d)


def sync_features(net, raw):  # uint8 frames [1, T, 3, 224, 224] → [1, S·8, 768], one segment per call (B = 1)
    x = (raw.float() / 255 - 0.5) / 0.5
    segs = (x.shape[1] - 16) // 8 + 1
    return torch.cat([net(x[:, 8 * i:8 * i + 16]) for i in range(segs)], 1)


def sync(frames=250, net=None):
    net = net or MotionFormer()
    raw = torch.randint(0, 256, (1, frames, 3, 224, 224), dtype=torch.uint8)
    return lambda: sync_features(net, raw)


# ---- the AudioX-MAF conditioning phase (§1.3, §1.4, §4.2–§4.6) ----
class TempLayer(nn.Module):  # one SA_Transformer layer: 16 heads of 64 (inner width 1024 ≠ 768), GELU MLP
    def __init__(s, d=768, h=16, dh=64):
        super().__init__()
        s.h, s.dh = h, dh
        s.norm, s.to_qkv, s.to_out = nn.LayerNorm(d), nn.Linear(d, 3 * h * dh, bias=False), nn.Linear(h * dh, d)
        s.ff_norm, s.ff1, s.ff2 = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(s, x):
        b, l, _ = x.shape
        q, k, v = s.to_qkv(s.norm(x)).view(b, l, 3, s.h, s.dh).permute(2, 0, 3, 1, 4)
        x = x + s.to_out(attend(q, k, v).transpose(1, 2).reshape(b, l, s.h * s.dh))
        return x + s.ff2(F.gelu(s.ff1(s.ff_norm(x))))


class VideoConditioner(nn.Module):  # clip-with-sync-w-empty-feat
    def __init__(s, d=768):
        super().__init__()
        s.clip = CLIPVision()
        s.temp = nn.ModuleList(TempLayer() for _ in range(4))
        s.temp_norm = nn.LayerNorm(d)
        s.temp_pos = nn.Parameter(torch.randn(1, 50, d) * 0.02)
        s.proj, s.proj_sync = nn.Linear(2500, 128), nn.Linear(240, 128)
        s.sync_weight = nn.Parameter(torch.tensor(0.5))
        s.empty = nn.Parameter(torch.zeros(1, 128, d))
        s.register_buffer('mean', torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 1, 3, 1, 1))
        s.register_buffer('std', torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 1, 3, 1, 1))

    def forward(s, video, syncf):  # [1, 50, 3, 224, 224] (0–255), [1, 240, 768] → [1, 128, 768]
        b, t = video.shape[:2]
        is_zero = (video == 0).flatten(1).all(1).view(b, 1, 1)
        px = ((video / 255 - s.mean) / s.std).reshape(b * t, 3, 224, 224)
        h = s.clip(px)  # [B·T, 50, 768]
        q, d = h.shape[1], h.shape[2]
        h = h.reshape(b, t, q, d).transpose(1, 2).reshape(b * q, t, d) + s.temp_pos
        for layer in s.temp:
            h = layer(h)
        h = s.temp_norm(h).reshape(b, q, t, d).transpose(1, 2).reshape(b, t * q, d)
        y = s.proj(h.reshape(b * d, t * q)).reshape(b, 128, d)  # the reshape-scramble (quirk 9)
        y = y + s.sync_weight * s.proj_sync(syncf.reshape(-1, 240)).reshape(b, 128, -1)
        return torch.where(is_zero, s.empty, y)


class MelConditioner(nn.Module):  # mel_spec: |STFT| → 256 HTK mel bands → log → random span mask → Linear
    def __init__(s, n_mels=256, d=768):
        super().__init__()
        s.proj = nn.Linear(n_mels, d)
        s.register_buffer('window', torch.hann_window(1024))
        # A triangular filterbank in the reference; its values do not change the cost.
        s.register_buffer('fb', torch.rand(513, n_mels))

    def forward(s, wav):  # [1, 2, N] → [1, 1 + N // 256, 768]
        spec = torch.stft(wav.mean(1), 1024, 256, 1024, s.window, center=True, pad_mode='reflect',
                          return_complex=True).abs()
        mel = torch.log(torch.clamp(spec.transpose(1, 2) @ s.fb, min=1e-5))  # [1, F, n_mels]
        f = mel.shape[1]
        n = int(f * (0.3 * torch.rand(1).item() + 0.7))
        st = int(torch.randint(0, f - n + 1, (1,)).item())
        mel[:, st:st + n] = 0
        return s.proj(mel)


class MAF(nn.Module):  # MAF_Block(768, 64 experts per modality, 24 heads, 8 fusion layers), §1.4
    def __init__(s, d=768, e=64, heads=24, layers=8):
        super().__init__()
        s.e = e
        s.gate = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, 3), nn.Sigmoid())
        s.experts = nn.Parameter(torch.randn(3 * e, d) * 0.02)
        s.cross = nn.MultiheadAttention(d, heads, batch_first=True)
        s.norm1 = nn.LayerNorm(d)
        s.fusion = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, activation=F.gelu,
                                                                    batch_first=True, norm_first=True), layers,
                                         enable_nested_tensor=False)
        s.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))
        s.bypass = nn.Parameter(torch.full((3,), -10.0))

    def forward(s, a1, a2, a3):
        xs = [a1, a2, a3]
        w = s.gate(torch.cat([x.mean(1) for x in xs], -1))
        c = torch.cat([x * w[:, i:i + 1, None] for i, x in enumerate(xs)], 1)
        q = s.experts.expand(c.shape[0], -1, -1)
        u = s.fusion(s.norm1(q + s.cross(q, c, c, need_weights=False)[0]))
        return torch.cat([x + torch.sigmoid(s.bypass[i]) * s.norms[i](u[:, i * s.e:(i + 1) * s.e].mean(1))[:, None]
                          for i, x in enumerate(xs)], 1)


class Conditioning(nn.Module):
    def __init__(s):
        super().__init__()
        s.sync, s.video, s.t5, s.mel, s.maf = MotionFormer(), VideoConditioner(), T5(), MelConditioner(), MAF()


def cond(sync_frames=250, net=None):
    net = net or Conditioning()
    raw = torch.randint(0, 256, (1, sync_frames, 3, 224, 224), dtype=torch.uint8)
    video = torch.randint(1, 256, (1, 50, 3, 224, 224)).float()
    audio = torch.zeros(1, 2, 441000)  # no audio prompt in video-to-audio: 10 s of silence
    run_t5 = t5(128, net.t5)

    def run():
        f = sync_features(net.sync, raw)
        if f.shape[1] < 240:  # a scaled run (--sync-frames < 250): the features repeated to the 240 tokens
            f = f.repeat(1, -(-240 // f.shape[1]), 1)[:, :240]
        v = net.video(video, f)
        text = run_t5()
        a = net.mel(audio)
        return net.maf(text, v, a)  # quirk 1: called as (text, video, audio) → [text | video | audio] tokens

    return run


# ---- end to end: the phases of one AudioX-MAF generation, assembled from the pieces above ----
ST_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I32': torch.int32, 'I64': torch.int64}


def read_safetensors_into(files, params):
    """Reads every tensor of the files, widened to fp32, and copies each into a parameter of the same shape
    (the torch modules here have names of their own). Returns (tensors read, bytes read, parameters filled)."""
    by_shape = {}
    for p in params:
        by_shape.setdefault(tuple(p.shape), []).append(p)
    n = nbytes = filled = 0
    for file in files:
        with open(file, 'rb') as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        hlen = int.from_bytes(mm[:8], 'little')
        header = json.loads(mm[8:8 + hlen])
        base = 8 + hlen
        for name, e in header.items():
            if name == '__metadata__':
                continue
            a, b = e['data_offsets']
            dt = ST_DTYPES[e['dtype']]
            count = (b - a) // torch.tensor([], dtype=dt).element_size()
            t = torch.frombuffer(mm, dtype=dt, count=count, offset=base + a).reshape(e['shape']).float() if count else None
            n, nbytes = n + 1, nbytes + (b - a)
            slot = by_shape.get(tuple(e['shape']))
            if slot and t is not None:
                slot.pop().copy_(t)
                filled += 1
            del t
        del header
        mm.close()
    return n, nbytes, filled


def e2e(a):
    def ms(t0):
        return (time.perf_counter() - t0) * 1e3

    # Built before the clock starts (with PyTorch's own init); the load is reading the files into them.
    conditioning, net, dec = Conditioning(), DiT(24), vae_decoder()
    params = [p for m in (conditioning, net, dec) for p in m.parameters()]
    t0 = time.perf_counter()
    with torch.no_grad():
        n, nbytes, filled = read_safetensors_into([f for f in a.weights.split(',') if f], params)
    load = ms(t0)
    with torch.inference_mode():
        t0 = time.perf_counter()
        ctx = cond(a.sync_frames, conditioning)()
        cond_ms = ms(t0)
        if ctx.shape[1] != a.context:
            raise SystemExit(f'e2e: the conditioning gave {ctx.shape[1]} tokens, the caller expected {a.context}')
        step = dit(24, 2, a.latents + 1, a.context, net)  # CFG batch 2, the prepended token
        steps = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            steps.append(ms(t0))
        t0 = time.perf_counter()
        vae(a.decode_latents, dec)()
        decode = ms(t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({'workload': 'e2e', 'loadMs': load, 'conditioningMs': cond_ms, 'stepMs': steps,
                      'samplingMs': sum(steps), 'decodeMs': decode, 'tensorsRead': n, 'bytesRead': nbytes,
                      'paramsFilled': filled, 'params': len(params), 'peak_bytes': peak,
                      'threads': torch.get_num_threads(), 'torch': torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('workload', choices=['dit', 'mmdit', 'vae', 't5', 'clip', 'sync', 'cond', 'matmul', 'e2e'])
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--runs', type=int, default=2)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--sync-frames', type=int, default=250)
    ap.add_argument('--weights', default='', help='e2e: comma-separated safetensors files to load')
    ap.add_argument('--steps', type=int, default=25)
    ap.add_argument('--latents', type=int, default=236)
    ap.add_argument('--context', type=int, default=1979)
    ap.add_argument('--decode-latents', type=int, default=216)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)  # Debian's build may default to 1
    if a.workload == 'e2e':
        if not a.weights:
            raise SystemExit('e2e needs --weights (the safetensors files of the model directory)')
        return e2e(a)
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
    build = {'dit': lambda: dit(a.layers), 'mmdit': lambda: mmdit(a.layers), 'vae': vae, 't5': t5, 'clip': clip,
             'sync': lambda: sync(a.sync_frames), 'cond': lambda: cond(a.sync_frames)}
    torch.set_default_tensor_type(torch.cuda.FloatTensor if dev.type == 'cuda' else torch.FloatTensor)
    run = build[a.workload]()
    best = float('inf')
    with torch.inference_mode():
        t0 = time.perf_counter()
        run()  # warm-up (timed alone with --runs 0)
        if a.runs == 0:
            best = time.perf_counter() - t0
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
