"""Building blocks of MossFormer (Zhao & Ma, ICASSP 2023) and MossFormer2 (Zhao et al., ICASSP 2024).

Every module here works on frame sequences laid out as [B, T, C] (time before channels), the natural layout for
the linear projections that make up most of these blocks.

* `FFConvM`: LayerNorm -> Linear -> SiLU -> depthwise conv (with its own residual) -> dropout; the
  "convolution-augmented" projection used for every input/output projection of the blocks below.
* `GatedAttentionLayer`: the MossFormer block, a gated single-head transformer with joint local (quadratic, inside
  non-overlapping groups) and global (linear, over the whole sequence) attention.
* `GatedFSMNBlock`: the MossFormer2 "RNN-free recurrent" module: bottleneck -> gated FSMN whose memory is a densely
  connected stack of dilated depthwise convolutions -> output projection, with a residual around it.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn


# ---- small pieces ----------------------------------------------------------------------------------------
class ScaledSinusoidalEmbedding(nn.Module):
    """Sinusoidal absolute position encoding [T, C] (sin half, cos half) times one learned scale (init 1)."""

    def __init__(self, dim: int, theta: float = 10000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"position encoding needs an even width, got {dim}")
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("inv_freq", theta ** (-torch.arange(0, dim, 2).float() / dim), persistent=False)

    def forward(self, length: int, device=None, dtype=None) -> torch.Tensor:
        pos = torch.arange(length, device=device or self.inv_freq.device, dtype=torch.float32)
        angles = pos[:, None] * self.inv_freq.to(pos.device)[None, :]
        emb = torch.cat((angles.sin(), angles.cos()), dim=-1) * self.scale
        return emb.to(dtype) if dtype is not None else emb


def rotary_tables(length: int, dim: int, device, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [T, dim/2] of rotary position embeddings for positions 0..length-1."""
    inv_freq = theta ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first 2 * cos.shape[-1] features of x [..., D] pairwise (feature i with i + half); cos/sin
    broadcast against x[..., :half] (e.g. [T, half] for x [B, T, D])."""
    half = cos.shape[-1]
    x1, x2, rest = x[..., :half], x[..., half:2 * half], x[..., 2 * half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest), dim=-1)


def token_shift(x: torch.Tensor) -> torch.Tensor:
    """[B, T, C]: the first half of the channels takes the previous frame's values (zeros at t=0)."""
    half = x.shape[-1] // 2
    shifted = F.pad(x[..., :half], (0, 0, 1, 0))[:, :-1]
    return torch.cat((shifted, x[..., half:]), dim=-1)


def depthwise_conv_time(x: torch.Tensor, weight: torch.Tensor, dilation: int = 1) -> torch.Tensor:
    """'Same'-padded depthwise convolution over time of x [B, C, T] with weight [C, 1, K] (K odd), no bias.

    Runs as a 2-D convolution with a (K, 1) kernel, and a dilation d as an undilated convolution over the d
    interleaved sub-sequences ([B, C, T/d, d]): the same result and MACs as Conv1d(groups=C, dilation=d), but
    the CPU (oneDNN) backward of a dilated or 1-D depthwise convolution is many times slower than this.
    """
    b, c, t = x.shape
    k = weight.shape[-1]
    pad_t = -t % dilation
    if pad_t:
        x = F.pad(x, (0, pad_t))
    x = x.reshape(b, c, (t + pad_t) // dilation, dilation)
    y = F.conv2d(x, weight.unsqueeze(-1), padding=(k // 2, 0), groups=c)
    return y.reshape(b, c, t + pad_t)[..., :t]


class DepthwiseConvResidual(nn.Module):
    """x + depthwise conv over time of x [B, T, C] (odd kernel, 'same' padding, no bias)."""

    def __init__(self, channels: int, kernel: int = 17):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"depthwise kernel must be odd, got {kernel}")
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # Conv1d's default initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + depthwise_conv_time(x.transpose(1, 2), self.weight).transpose(1, 2)


class FFConvM(nn.Module):
    """LayerNorm -> Linear(dim_in, dim_out) -> SiLU -> depthwise conv with residual -> dropout; [B, T, C]."""

    def __init__(self, dim_in: int, dim_out: int, kernel: int = 17, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim_in)
        self.linear = nn.Linear(dim_in, dim_out)
        self.conv = DepthwiseConvResidual(dim_out, kernel)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.conv(F.silu(self.linear(self.norm(x)))))


class OffsetScale(nn.Module):
    """Per-head learned scale and offset of a shared base [..., D] -> `heads` tensors [..., D]."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.randn(heads, dim) * 0.02)
        self.beta = nn.Parameter(torch.zeros(heads, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., heads, D]"""
        return x.unsqueeze(-2) * self.gamma + self.beta


# ---- MossFormer block ------------------------------------------------------------------------------------
def joint_attention(quad_q, lin_q, quad_k, lin_k, values, group_size: int, dropout: nn.Module) -> torch.Tensor:
    """Quadratic attention inside non-overlapping groups plus non-causal linear attention over the whole sequence.

    q/k [B, T, Dk], values [B, T, E] -> [B, T, E]. Local scores are relu(q k^T / group_size)^2; the sequence is
    zero-padded to whole groups (padded values are zero, so they add nothing); the global part sums k^T v over
    all T frames and divides by T. Sequences shorter than one group use a single group of length T (the same
    result as padding them, with less work).
    """
    b, t, _ = values.shape
    g = min(group_size, t)
    pad = -t % g
    if pad:
        quad_q, quad_k, values_p = (F.pad(z, (0, 0, 0, pad)) for z in (quad_q, quad_k, values))
    else:
        values_p = values
    n_groups = (t + pad) // g
    qg = quad_q.reshape(b, n_groups, g, -1)
    kg = quad_k.reshape(b, n_groups, g, -1)
    vg = values_p.reshape(b, n_groups, g, -1)
    attn = dropout(F.relu(qg @ kg.transpose(-1, -2) / group_size) ** 2)
    local = (attn @ vg).reshape(b, t + pad, -1)[:, :t]
    kv = lin_k.transpose(1, 2) @ values / t  # [B, Dk, E]
    return local + lin_q @ kv


class GatedAttentionLayer(nn.Module):
    """MossFormer block: gated single-head transformer with convolution-augmented joint self-attention, [B, T, C].

    token shift -> FFConvM to the hidden pair (v, u) (each `expansion_factor * dim / 2` wide) and to a shared
    q/k base of width `qk_dim` -> per-head offset/scale into quad_q, lin_q, quad_k, lin_k -> rotary positions
    (first `rotary_dim` features) -> joint attention of v and of u -> out = (att_u * v) * sigmoid(att_v * u)
    -> FFConvM back to `dim` -> residual.
    """

    def __init__(self, dim: int, qk_dim: int = 128, expansion_factor: float = 4.0, group_size: int = 256,
                 rotary_dim: int = 32, kernel: int = 17, dropout: float = 0.1, shift_tokens: bool = True):
        super().__init__()
        hidden = int(dim * expansion_factor)
        if hidden % 2:
            raise ValueError(f"dim * expansion_factor must be even (split into u and v), got {hidden}")
        if rotary_dim % 2 or rotary_dim > qk_dim:
            raise ValueError(f"rotary_dim must be even and <= qk_dim ({qk_dim}), got {rotary_dim}")
        self.group_size, self.rotary_dim, self.shift_tokens = group_size, rotary_dim, shift_tokens
        self.half = hidden // 2
        self.to_hidden = FFConvM(dim, hidden, kernel, dropout)
        self.to_qk = FFConvM(dim, qk_dim, kernel, dropout)
        self.offset_scale = OffsetScale(qk_dim, heads=4)
        self.attn_dropout = nn.Dropout(dropout)
        self.to_out = FFConvM(self.half, dim, kernel, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = token_shift(x) if self.shift_tokens else x
        vu = self.to_hidden(h)  # [v | u]: both value streams go through the attention in one pass
        v, u = vu.split(self.half, dim=-1)
        qk = self.offset_scale(self.to_qk(h))  # [B, T, 4, Dk]
        if self.rotary_dim:
            cos, sin = rotary_tables(x.shape[1], self.rotary_dim, x.device)
            qk = apply_rotary(qk, cos[:, None], sin[:, None])
        quad_q, lin_q, quad_k, lin_k = qk.unbind(dim=-2)
        att = joint_attention(quad_q, lin_q, quad_k, lin_k, vu, self.group_size, self.attn_dropout)
        att_v, att_u = att.split(self.half, dim=-1)
        out = (att_u * v) * torch.sigmoid(att_v * u)
        return x + self.to_out(out)


# ---- MossFormer2 recurrent module ------------------------------------------------------------------------
class TimeInstanceNorm(nn.Module):
    """Per-example, per-channel normalisation over time of [B, C, T] with a learned affine (defined for T=1)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class DenseDilatedLayer(nn.Module):
    """One layer of the dense memory: for each channel c, a dilated depthwise conv over channel c of each of
    `n_inputs` tensors [B, C, T], summed (a grouped conv with n_inputs inputs per group), time-instance norm,
    per-channel PReLU."""

    def __init__(self, channels: int, n_inputs: int, kernel: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(channels, n_inputs, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.norm = TimeInstanceNorm(channels)
        self.act = nn.PReLU(channels)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        out = sum(depthwise_conv_time(z, self.weight[:, j:j + 1], self.dilation) for j, z in enumerate(inputs))
        return self.act(self.norm(out))


class DilatedDenseMemory(nn.Module):
    """FSMN memory as densely connected dilated depthwise convolutions, [B, T, C] -> [B, T, C].

    Layer i (dilation 2**i, 'same' padding, non-causal) sees the input and every earlier layer's output, channel
    by channel; the last layer's output is the memory.
    """

    def __init__(self, channels: int, kernel: int = 39, depth: int = 2):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"FSMN memory kernel must be odd, got {kernel}")
        self.layers = nn.ModuleList(DenseDilatedLayer(channels, i + 1, kernel, 2**i) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x.transpose(1, 2)]  # each [B, C, T]
        for layer in self.layers:
            feats.append(layer(feats))
        return feats[-1].transpose(1, 2)


class DilatedFSMN(nn.Module):
    """x + memory(Linear(ReLU(Linear(x)))) : a deep FSMN unit with a dilated dense memory, [B, T, C]."""

    def __init__(self, channels: int, hidden: int, kernel: int = 39, depth: int = 2):
        super().__init__()
        self.linear = nn.Linear(channels, hidden)
        self.project = nn.Linear(hidden, channels, bias=False)
        self.memory = DilatedDenseMemory(channels, kernel, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.memory(self.project(F.relu(self.linear(x))))


class GatedFSMN(nn.Module):
    """Gated convolutional unit around the FSMN: x + FFConvM_v(x) * DilatedFSMN(FFConvM_u(x)), [B, T, C]."""

    def __init__(self, channels: int, kernel: int = 17, fsmn_kernel: int = 39, fsmn_depth: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.to_u = FFConvM(channels, channels, kernel, dropout)
        self.to_v = FFConvM(channels, channels, kernel, dropout)
        self.fsmn = DilatedFSMN(channels, channels, fsmn_kernel, fsmn_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.to_v(x) * self.fsmn(self.to_u(x))


class GatedFSMNBlock(nn.Module):
    """MossFormer2 recurrent module, [B, T, dim]: bottleneck (1x1 to `inner`, PReLU) -> LayerNorm -> gated FSMN
    -> LayerNorm -> output 1x1 back to `dim` -> residual."""

    def __init__(self, dim: int, inner: int = 256, kernel: int = 17, fsmn_kernel: int = 39, fsmn_depth: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.bottleneck = nn.Linear(dim, inner)
        self.act = nn.PReLU()
        self.norm_in = nn.LayerNorm(inner)
        self.gated_fsmn = GatedFSMN(inner, kernel, fsmn_kernel, fsmn_depth, dropout)
        self.norm_out = nn.LayerNorm(inner)
        self.out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm_in(self.act(self.bottleneck(x)))
        return x + self.out(self.norm_out(self.gated_fsmn(y)))
