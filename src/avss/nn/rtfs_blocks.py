"""Building blocks of RTFS-Net (Pegg, Li & Hu, ICLR 2024), written from the paper's description.

* `SRU`: bidirectional multi-layer Simple Recurrent Unit (Lei et al. 2018) in plain torch ops; its only matrix
  product is one input projection per layer, which is what FLOP counters see.
* `AxisRNN`: one path of the dual-path RNN: unfold K neighbouring bins/frames, run an RNN along the axis,
  fold back with a transposed convolution, residual.
* `TFSelfAttention`: multi-head self-attention over time with frequency folded into the features.
* `TFAR`: temporal-frequency attention reconstruction unit, out = W1(local) * sigmoid(W2(global)) + W3(global).
* `MultiScaleBlock`: the compress -> process at the coarsest scale -> reconstruct pattern shared by the
  RTFS block (2-D, [B, C, T, F]) and the visual VP block (1-D, [B, C, T]).
* `CAFusion`: cross-dimensional attention fusion of video [B, Cv, Tv] into audio [B, Ca, T, F].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avss.nn.norms import GlobalLayerNorm
from avss.nn.visual import align_to_frames

RNN_TYPES = ("sru", "gru", "lstm")


def _conv(nd: int):
    return {1: nn.Conv1d, 2: nn.Conv2d}[nd]


class GlobalNorm(nn.Module):
    """gLN (avss.nn.norms.GlobalLayerNorm: its parameters and eps) over channels and all other axes of
    [B, C, ...] (1-D or 2-D maps), computed by the fused group-norm kernel with one group, which is the same
    function (~6x faster forward and backward on CPU than the generic mean/var formula at these sizes)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = GlobalLayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, 1, self.norm.weight.view(-1), self.norm.bias.view(-1), self.norm.eps)


class ChannelsLastConv2d(nn.Conv2d):
    """nn.Conv2d computed in channels-last memory format (same parameters and outputs). For depthwise 2-D convs
    at stride 1 the NCHW CPU backward is ~7x slower than the channels-last one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class ConvNorm(nn.Sequential):
    """Conv (padding keeps the size at stride 1, halves it at stride 2) -> gLN -> optional activation."""

    def __init__(self, nd: int, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: str | None = None):
        layers = []
        if stride > 1:
            padding = (kernel - 1) // 2
        elif kernel % 2:
            padding = kernel // 2
        else:  # even kernel at stride 1: one more zero on the right/bottom keeps the size
            padding = 0
            layers.append({1: nn.ZeroPad1d, 2: nn.ZeroPad2d}[nd]((kernel // 2 - 1, kernel // 2) * nd))
        conv = ChannelsLastConv2d if nd == 2 and groups > 1 and kernel > 1 else _conv(nd)
        layers += [conv(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups), GlobalNorm(c_out)]
        if act == "prelu":
            layers.append(nn.PReLU())
        elif act == "relu":
            layers.append(nn.ReLU())
        super().__init__(*layers)


# ---- recurrent layers ------------------------------------------------------------------------------------------
class SRULayer(nn.Module):
    """One (bi)directional SRU layer, batch-first [N, L, d] -> [N, L, dirs * h].

    u = x W (one matmul for every gate and direction); per step, per direction:
        f_t = sigmoid(u_f + v_f * c_{t-1} + b_f)      c_t = f_t * c_{t-1} + (1 - f_t) * u_x
        r_t = sigmoid(u_r + v_r * c_{t-1} + b_r)      h_t = r_t * c_t + (1 - r_t) * x'_t
    with the highway input x' = x when d == dirs * h, otherwise a fourth projection of x.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__()
        self.hidden, self.dirs = hidden_size, 2 if bidirectional else 1
        self.k = 3 if input_size == self.dirs * hidden_size else 4
        self.weight = nn.Parameter(torch.empty(input_size, self.dirs * self.k * hidden_size))
        self.weight_c = nn.Parameter(torch.empty(2, self.dirs, hidden_size))  # v_f, v_r
        self.bias = nn.Parameter(torch.zeros(2, self.dirs, hidden_size))  # b_f, b_r
        nn.init.uniform_(self.weight, -math.sqrt(3.0 / input_size), math.sqrt(3.0 / input_size))
        nn.init.uniform_(self.weight_c, -0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        u = (x @ self.weight).view(n, length, self.dirs, self.k, self.hidden)
        highway = x.view(n, length, self.dirs, self.hidden) if self.k == 3 else u[..., 3, :]
        if self.dirs == 2:  # run the backward direction on time-reversed inputs, in the same loop
            u = torch.stack([u[:, :, 0], u[:, :, 1].flip(1)], dim=2)
            highway = torch.stack([highway[:, :, 0], highway[:, :, 1].flip(1)], dim=2)
        u_r = u[..., 2, :] + self.bias[1]
        v_f, v_r = self.weight_c[0], self.weight_c[1]
        if x.is_meta:  # shape-only pass (MAC counting): the recurrence is elementwise, no MACs; skip its L steps
            c_all = u[..., 0, :] + v_f
        else:
            # per-step slices by one unbind (indexing u[:, t] in the loop would cost a full-size gradient per step)
            steps_x = u[..., 0, :].transpose(0, 1).unbind(0)
            steps_f = (u[..., 1, :] + self.bias[0]).transpose(0, 1).unbind(0)
            c = x.new_zeros(n, self.dirs, self.hidden)
            states = []
            for u_x, u_f in zip(steps_x, steps_f):  # the only sequential part: elementwise
                f = torch.sigmoid(u_f + v_f * c)
                c = u_x + f * (c - u_x)
                states.append(c)
            c_all = torch.stack(states, dim=1)  # [N, L, dirs, h]
        c_prev = torch.cat([c_all.new_zeros(n, 1, self.dirs, self.hidden), c_all[:, :-1]], dim=1)
        r = torch.sigmoid(u_r + v_r * c_prev)
        h = highway + r * (c_all - highway)
        if self.dirs == 2:
            h = torch.stack([h[:, :, 0], h[:, :, 1].flip(1)], dim=2)
        return h.reshape(n, length, self.dirs * self.hidden)


class SRU(nn.Module):
    """Stacked SRU layers, batch-first [N, L, input_size] -> [N, L, dirs * hidden_size]."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = True):
        super().__init__()
        dirs = 2 if bidirectional else 1
        self.layers = nn.ModuleList(SRULayer(input_size if i == 0 else dirs * hidden_size, hidden_size, bidirectional)
                                    for i in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def make_rnn(kind: str, input_size: int, hidden_size: int, num_layers: int) -> nn.Module:
    """Bidirectional batch-first RNN returning only its output sequence [N, L, 2 * hidden_size]."""
    if kind == "sru":
        return SRU(input_size, hidden_size, num_layers, bidirectional=True)
    if kind in ("gru", "lstm"):
        cls = nn.GRU if kind == "gru" else nn.LSTM
        return _OutputOnly(cls(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True))
    raise ValueError(f"unknown rnn {kind!r}; choose one of {list(RNN_TYPES)}")


class _OutputOnly(nn.Module):
    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


class AxisRNN(nn.Module):
    """Recurrent modelling along one axis of [B, C, T, F] ("time" or "freq"):
    LayerNorm(C) -> unfold `kernel` neighbours (stride 1) -> bidirectional RNN -> ConvTranspose1d fold -> + x."""

    def __init__(self, channels: int, hidden: int, layers: int, kernel: int, axis: str, rnn: str = "sru"):
        super().__init__()
        if axis not in ("time", "freq"):
            raise ValueError(f"axis must be 'time' or 'freq', got {axis!r}")
        self.axis, self.kernel = axis, kernel
        self.norm = nn.LayerNorm(channels)
        self.rnn = make_rnn(rnn, channels * kernel, hidden, layers)
        self.fold = nn.ConvTranspose1d(2 * hidden, channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        seq = x.permute(0, 2, 3, 1) if self.axis == "freq" else x.permute(0, 3, 2, 1)  # [B, rows, S, C]
        rows, length = seq.shape[1], seq.shape[2]
        y = self.norm(seq).reshape(b * rows, length, c)
        if length < self.kernel:  # too short to unfold once: pad, crop after folding
            y = F.pad(y, (0, 0, 0, self.kernel - length))
        windows = y.unfold(1, self.kernel, 1)  # [N, S - K + 1, C, K]
        y = self.rnn(windows.reshape(*windows.shape[:2], c * self.kernel))  # [N, S - K + 1, 2h]
        y = self.fold(y.transpose(1, 2))[..., :length]  # [N, C, S]
        y = y.reshape(b, rows, c, length)
        y = y.permute(0, 2, 1, 3) if self.axis == "freq" else y.permute(0, 2, 3, 1)
        return x + y


# ---- attention -------------------------------------------------------------------------------------------------
class HeadFreqNorm(nn.Module):
    """LayerNorm of [B, heads * E, T, F] over (E, F) per head and frame, with a per-channel affine."""

    def __init__(self, heads: int, channels: int, eps: float = 1e-5):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        y = x.view(b, self.heads, c // self.heads, t, f)
        mean = y.mean(dim=(2, 4), keepdim=True)
        var = (y - mean).pow(2).mean(dim=(2, 4), keepdim=True)
        y = ((y - mean) / torch.sqrt(var + self.eps)).view(b, c, t, f)
        return y * self.weight + self.bias


class TFSelfAttention(nn.Module):
    """Multi-head self-attention over the time axis of [B, C, T, F]: queries/keys are 1x1 projections to
    `qk_dim` channels per head, values keep C / heads channels per head; each frame's token is the flattened
    (channels x frequency) map of its head, so attention weights are shared across frequency."""

    def __init__(self, channels: int, heads: int = 4, qk_dim: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.heads = heads

        def proj(c_out, groups):
            return nn.Sequential(nn.Conv2d(channels, c_out, 1), nn.PReLU(), HeadFreqNorm(groups, c_out))

        self.query, self.key = proj(heads * qk_dim, heads), proj(heads * qk_dim, heads)
        self.value = proj(channels, heads)
        self.out = proj(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape

        def tokens(z):  # [B, h * e, T, F] -> [B, h, T, e * F]
            return z.view(b, self.heads, -1, t, f).transpose(2, 3).reshape(b, self.heads, t, -1)

        q, k, v = tokens(self.query(x)), tokens(self.key(x)), tokens(self.value(x))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)  # [B, h, T, T]
        y = (weights @ v).view(b, self.heads, t, c // self.heads, f).transpose(2, 3).reshape(b, c, t, f)
        return x + self.out(y)


class SinusoidalPositions(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] + fixed sinusoidal positions
        t, c = x.shape[1], x.shape[2]
        pos = torch.arange(t, device=x.device, dtype=x.dtype)[:, None]
        freq = torch.exp(torch.arange(0, c, 2, device=x.device, dtype=x.dtype) * (-math.log(10000.0) / c))
        table = torch.zeros(t, c, device=x.device, dtype=x.dtype)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq[: c // 2])
        return x + table


class GlobalAttention1d(nn.Module):
    """Transformer layer over time for [B, C, T] (the VP block's coarsest scale): sinusoidal positions,
    pre-LN multi-head self-attention and a convolutional feed-forward (1x1 -> depthwise k5 -> 1x1), residuals."""

    def __init__(self, channels: int, heads: int = 8, ffn_mult: int = 2, dropout: float = 0.1):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.heads = heads
        self.positions = SinusoidalPositions()
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = GlobalNorm(channels)
        hidden = ffn_mult * channels
        self.ffn = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Conv1d(hidden, hidden, 5, padding=2, groups=hidden),
                                 nn.ReLU(), nn.Dropout(dropout), nn.Conv1d(hidden, channels, 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        z = self.norm1(self.positions(x.transpose(1, 2)))  # [B, T, C]
        q, k, v = self.qkv(z).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        attended = self.proj((weights @ v).transpose(1, 2).reshape(b, t, c)).transpose(1, 2)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.norm2(x)))


# ---- multi-scale compression / reconstruction ------------------------------------------------------------------
class TFAR(nn.Module):
    """Attention reconstruction unit: W1(local) * sigmoid(up(W2(coarse))) + up(W3(coarse)); W = depthwise conv
    + gLN, applied at each input's own resolution, the coarse ones then upsampled (nearest) to the local size."""

    def __init__(self, nd: int, channels: int, kernel: int):
        super().__init__()
        self.local = ConvNorm(nd, channels, channels, kernel, groups=channels)
        self.gate = ConvNorm(nd, channels, channels, kernel, groups=channels)
        self.embed = ConvNorm(nd, channels, channels, kernel, groups=channels)

    def forward(self, local: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        size = local.shape[2:]
        gate = F.interpolate(self.gate(coarse), size=size, mode="nearest")
        embed = F.interpolate(self.embed(coarse), size=size, mode="nearest")
        return self.local(local) * torch.sigmoid(gate) + embed


class MultiScaleBlock(nn.Module):
    """[B, C, *S] -> [B, C, *S] (S = (T,) or (T, F)):
    1x1 C -> D (gLN, PReLU); `depth` depthwise convs (the first at stride 1, the others at stride 2, each
    halving every axis) give D-channel maps A_0..A_{q-1}; their average-pooled sum at the coarsest size goes
    through `core`; TF-AR units inject the result into every A_i and fuse the scales back up (coarse to fine,
    each plus its A_i); 1x1 D -> C; residual."""

    def __init__(self, nd: int, channels: int, hidden: int, depth: int, kernel: int, core: nn.Module):
        super().__init__()
        self.nd, self.depth = nd, depth
        self.proj = ConvNorm(nd, channels, hidden, 1, act="prelu")
        self.downs = nn.ModuleList(ConvNorm(nd, hidden, hidden, kernel, stride=1 if i == 0 else 2, groups=hidden)
                                   for i in range(depth))
        self.core = core
        self.inject = nn.ModuleList(TFAR(nd, hidden, kernel) for _ in range(depth))
        self.fuse = nn.ModuleList(TFAR(nd, hidden, kernel) for _ in range(depth - 1))
        self.out = _conv(nd)(hidden, channels, 1)

    def min_size(self) -> int:
        """Smallest axis length the stride-2 convs accept (every level keeps >= 1 sample)."""
        return 2 ** max(self.depth - 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels, h = [], self.proj(x)
        for down in self.downs:
            h = down(h)
            levels.append(h)
        size = levels[-1].shape[2:]
        pool = F.adaptive_avg_pool1d if self.nd == 1 else F.adaptive_avg_pool2d
        coarse = self.core(sum(pool(level, size) for level in levels))
        fused = [unit(level, coarse) for unit, level in zip(self.inject, levels)]
        for i in range(self.depth - 2, -1, -1):
            fused[i] = self.fuse[i](fused[i], fused[i + 1]) + levels[i]
        return x + self.out(fused[0])


def rtfs_block(channels: int = 256, hidden: int = 64, depth: int = 2, kernel: int = 4, rnn: str = "sru",
               rnn_hidden: int = 32, rnn_layers: int = 4, unfold: int = 8, att_heads: int = 4,
               att_qk_dim: int = 4) -> MultiScaleBlock:
    """The RTFS block on [B, C, T, F]: at the coarsest scale, frequency-axis then time-axis dual-path RNN,
    then TF-domain self-attention over time."""
    core = nn.Sequential(AxisRNN(hidden, rnn_hidden, rnn_layers, unfold, axis="freq", rnn=rnn),
                         AxisRNN(hidden, rnn_hidden, rnn_layers, unfold, axis="time", rnn=rnn),
                         TFSelfAttention(hidden, att_heads, att_qk_dim))
    return MultiScaleBlock(2, channels, hidden, depth, kernel, core)


def vp_block(channels: int = 64, hidden: int = 64, depth: int = 4, kernel: int = 3, heads: int = 8,
             dropout: float = 0.1) -> MultiScaleBlock:
    """The visual processing (VP) block on [B, C, Tv]: global attention at the coarsest time scale."""
    return MultiScaleBlock(1, channels, hidden, depth, kernel, GlobalAttention1d(hidden, heads, dropout=dropout))


# ---- fusion ----------------------------------------------------------------------------------------------------
class CAFusion(nn.Module):
    """Cross-dimensional attention fusion of video v [B, Cv, Tv] into audio a [B, Ca, T, F] -> [B, Ca, T, F].

    attention: a 1x1 conv maps v to `heads` x Ca maps; each head's weights are a softmax over video time
      (rescaled by Tv so they average 1 whatever the clip length), averaged over heads, upsampled (nearest) to
      the audio frame rate and multiplied with the audio value (depthwise conv + gLN), broadcast over frequency;
    gating: the audio key (depthwise conv + gLN) times sigmoid of a 1x1 projection of v (gLN), upsampled.
    The two are summed.
    """

    def __init__(self, audio_channels: int, video_channels: int, heads: int = 4, kernel: int = 1):
        super().__init__()
        self.heads, self.audio_channels = heads, audio_channels
        self.value = ConvNorm(2, audio_channels, audio_channels, kernel, groups=audio_channels)
        self.key = ConvNorm(2, audio_channels, audio_channels, kernel, groups=audio_channels)
        self.attention = ConvNorm(1, video_channels, heads * audio_channels, 1)
        self.gate = ConvNorm(1, video_channels, audio_channels, 1)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        b, frames = audio.shape[0], audio.shape[2]
        logits = self.attention(video).view(b, self.heads, self.audio_channels, -1)
        weights = (torch.softmax(logits, dim=-1) * logits.shape[-1]).mean(dim=1)  # [B, Ca, Tv]
        weights = align_to_frames(weights, frames).unsqueeze(-1)  # [B, Ca, T, 1]
        gate = torch.sigmoid(align_to_frames(self.gate(video), frames)).unsqueeze(-1)
        return self.value(audio) * weights + self.key(audio) * gate
