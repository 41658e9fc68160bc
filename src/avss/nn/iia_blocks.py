"""Building blocks of IIANet (Li, Yang, Sun & Hu, "IIANet: An Intra- and Inter-Modality Attention Network for
Audio-Visual Speech Separation", ICML 2024), written from the paper's description.

One *IntraA block* processes one modality at several temporal scales:

  bottom-up   1x1 conv (C -> H) and a pyramid of depthwise convolutions (kernel 5, strides 1, 2, 2, ...),
              giving levels x_1 (finest) .. x_D (coarsest)
  global      g = sum_i pool(x_i) (every level adaptively average-pooled to the coarsest length), refined by
              a global-context module (optional multi-head self-attention, then a convolutional FFN)
  top-down    "select attention": every level is modulated by the (upsampled) global feature,
              x_i' = sigmoid(W1 g) * x_i + W2 g, and the levels are fused coarse -> fine (upsample, add)
  output      1x1 conv (H -> C) + residual

The *InterA* connections between the audio and the video IntraA blocks (`AVIntraInterBlock`):

  InterA-T    top: the two global features gate each other (both directions)
  InterA-M    middle: every audio level is gated by the video level of the same depth
  InterA-B    bottom: between iterations the audio output is gated by the video output (`BottomInterA`)

All three use one gate form (`CrossGate`): x += sigmoid(Wg o) * x + Wb o, o = the other modality's feature.

Video features run at 25 frames/s, audio features at (sample rate / encoder stride) frames/s: every cross-modal
term is computed at the resolution of its source and resampled (nearest frame) to the other modality's length.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avss.nn.norms import GlobalLayerNorm


def resample(x: torch.Tensor, length: int) -> torch.Tensor:
    """[B, C, T] -> [B, C, length] by nearest-frame repetition / selection (identity when T == length)."""
    return x if x.shape[-1] == length else F.interpolate(x, size=length, mode="nearest")


class ConvNorm(nn.Sequential):
    """Conv1d ('same' padding for odd kernels) -> gLN -> optional PReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = False):
        layers = [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups),
                  GlobalLayerNorm(c_out)]
        if act:
            layers.append(nn.PReLU())
        super().__init__(*layers)


class ConvFFN(nn.Module):
    """Convolutional feed-forward network on [B, C, T]: 1x1 (C -> eC) -> depthwise k5 -> PReLU -> 1x1 (eC -> C),
    residual."""

    def __init__(self, channels: int, expansion: int = 2, kernel: int = 5):
        super().__init__()
        hidden = channels * expansion
        self.body = nn.Sequential(
            ConvNorm(channels, hidden, 1),
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden),
            nn.PReLU(),
            ConvNorm(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over time on [B, C, T] (sinusoidal positions), residual."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    @staticmethod
    def positions(length: int, channels: int, like: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(length, dtype=like.dtype, device=like.device)[:, None]
        freq = torch.exp(torch.arange(0, channels, 2, dtype=like.dtype, device=like.device)
                         * (-math.log(10000.0) / channels))
        pe = torch.zeros(length, channels, dtype=like.dtype, device=like.device)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq)[:, : channels // 2]
        return pe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        h = self.norm(x.transpose(1, 2)) + self.positions(t, c, x)  # [B, T, C]
        q, k, v = self.qkv(h).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # [B, heads, T, C/heads]
        return x + self.out(y.transpose(1, 2).reshape(b, t, c)).transpose(1, 2)


class GlobalContext(nn.Module):
    """Refines the pooled global feature: [self-attention] -> convolutional FFN."""

    def __init__(self, channels: int, heads: int = 0, ffn_expansion: int = 2):
        super().__init__()
        self.attention = SelfAttention(channels, heads) if heads else nn.Identity()
        self.ffn = ConvFFN(channels, ffn_expansion) if ffn_expansion else nn.Identity()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.attention(g))


class SelectAttention(nn.Module):
    """IntraA top-down gate: x' = sigmoid(W1 g) * x + W2 g, with g (coarser) resampled to x's length.

    W1, W2 are per-channel (depthwise, `kernel` taps) convolutions + gLN, evaluated at g's own (coarse)
    resolution before the nearest-frame upsampling, which is what makes the top-down path cheap.
    """

    def __init__(self, channels: int, kernel: int = 1):
        super().__init__()
        self.gate = ConvNorm(channels, channels, kernel, groups=channels)
        self.bias = ConvNorm(channels, channels, kernel, groups=channels)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        return torch.sigmoid(resample(self.gate(g), n)) * x + resample(self.bias(g), n)


class CrossGate(nn.Module):
    """InterA gate from another modality: x += sigmoid(Wg o) * x + Wb o.

    `o` ([B, C_o, T_o]) is projected by 1x1 convs + gLN at its own resolution, then resampled (nearest frame)
    to x's length; the additive term Wb o is the "sum" half of the select-attention form shared with IntraA.
    """

    def __init__(self, c_other: int, c_x: int):
        super().__init__()
        self.gate = ConvNorm(c_other, c_x, 1)
        self.bias = ConvNorm(c_other, c_x, 1)

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        return x + torch.sigmoid(resample(self.gate(other), n)) * x + resample(self.bias(other), n)


class IntraABlock(nn.Module):
    """Multi-scale IntraA block for one modality, [B, C, T] -> [B, C, T] (see module docstring).

    The forward pass is split in three stages so that `AVIntraInterBlock` can insert the InterA connections
    between them: `bottom_up` -> `global_feature` -> `top_down`.
    """

    def __init__(self, channels: int, hidden: int, depth: int = 5, kernel: int = 5, heads: int = 0,
                 ffn_expansion: int = 2, gate_kernel: int = 1):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        self.proj_in = ConvNorm(channels, hidden, 1, act=True)
        self.levels = nn.ModuleList(
            ConvNorm(hidden, hidden, kernel, stride=1 if i == 0 else 2, groups=hidden) for i in range(depth)
        )
        self.context = GlobalContext(hidden, heads, ffn_expansion)
        self.select = nn.ModuleList(SelectAttention(hidden, gate_kernel) for _ in range(depth))
        self.proj_out = nn.Conv1d(hidden, channels, 1)

    def bottom_up(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, h = [], self.proj_in(x)
        for level in self.levels:
            h = level(h)
            feats.append(h)
        return feats

    def global_feature(self, feats: list[torch.Tensor]) -> torch.Tensor:
        n = feats[-1].shape[-1]
        return self.context(sum(F.adaptive_avg_pool1d(f, n) for f in feats))

    def top_down(self, x: torch.Tensor, feats: list[torch.Tensor], g: torch.Tensor, middle=None) -> torch.Tensor:
        """`middle(i, level)` (optional) modifies each selected level before the fusion (InterA-M)."""
        fused = None
        for i in reversed(range(self.depth)):
            level = self.select[i](feats[i], g)
            if middle is not None:
                level = middle(i, level)
            fused = level if fused is None else level + resample(fused, level.shape[-1])
        return x + self.proj_out(fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.bottom_up(x)
        return self.top_down(x, feats, self.global_feature(feats))


class AVIntraInterBlock(nn.Module):
    """An audio IntraA block and a video IntraA block joined by InterA-T (global features) and InterA-M
    (every pyramid level). `forward(a, v)` runs both; `audio_only(a)` runs the audio block alone with the
    same (shared) weights, as in IIANet's audio-only iterations."""

    def __init__(self, audio: IntraABlock, video: IntraABlock, audio_hidden: int, video_hidden: int):
        super().__init__()
        if audio.depth != video.depth:
            raise ValueError("the audio and video pyramids must have the same depth")
        self.audio, self.video = audio, video
        self.top_a = CrossGate(video_hidden, audio_hidden)  # InterA-T: video global gates audio global
        self.top_v = CrossGate(audio_hidden, video_hidden)  # InterA-T: audio global gates video global
        self.middle = nn.ModuleList(CrossGate(video_hidden, audio_hidden) for _ in range(audio.depth))  # InterA-M

    def audio_only(self, a: torch.Tensor) -> torch.Tensor:
        return self.audio(a)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fa, fv = self.audio.bottom_up(a), self.video.bottom_up(v)
        ga, gv = self.audio.global_feature(fa), self.video.global_feature(fv)
        ga, gv = self.top_a(ga, gv), self.top_v(gv, ga)  # both from the un-gated features
        v_out_levels = []

        def keep(i, level):
            v_out_levels.append((i, level))
            return level

        v_out = self.video.top_down(v, fv, gv, middle=keep)
        video_levels = dict(v_out_levels)
        a_out = self.audio.top_down(a, fa, ga, middle=lambda i, level: self.middle[i](level, video_levels[i]))
        return a_out, v_out


class BottomInterA(nn.Module):
    """InterA-B: the audio output of an audio-visual iteration gated by and summed with the video output,
    a += sigmoid(Wg v) * a + Wb v (1x1 convs + gLN, video -> audio channels)."""

    def __init__(self, video_channels: int, audio_channels: int):
        super().__init__()
        self.gate = CrossGate(video_channels, audio_channels)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.gate(a, v)
