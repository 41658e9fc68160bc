"""MossFormer (Zhao & Ma, ICASSP 2023) and MossFormer2 (Zhao et al., ICASSP 2024): audio-only separation.

Conv1d encoder (N=512, kernel 16, stride 8, ReLU) -> mask net -> ConvTranspose1d decoder. The mask net works on the
whole frame sequence (no chunking): channel LayerNorm -> 1x1 conv -> + scaled sinusoidal positions -> `layers`
MossFormer blocks (gated single-head attention; MossFormer2 follows each with a gated dilated-FSMN recurrent
block) -> LayerNorm, residual around the stack -> PReLU -> 1x1 to n_src * dim -> tanh(1x1) * sigmoid(1x1) ->
1x1 to the encoder width -> ReLU masks.

Full configurations (8 kHz, 24 layers, dim 512): MossFormer ~42 M parameters (the paper's MossFormer(L): 42.1 M);
MossFormer2 ~55.7 M parameters and ~83 G MACs per second of 8 kHz audio. Layers: `avss.nn.mossformer_blocks`.
"""
from __future__ import annotations

import torch
from torch import nn

from avss.models.base import EncoderMaskerDecoder
from avss.nn.codecs import ConvDecoder, ConvEncoder
from avss.nn.mossformer_blocks import GatedAttentionLayer, GatedFSMNBlock, ScaledSinusoidalEmbedding
from avss.nn.norms import ChannelLayerNorm


class MossFormerMasker(nn.Module):
    """[B, N, T] encoder frames -> [B, n_src, N, T] masks.

    `fsmn_inner` > 0 adds a GatedFSMNBlock after every attention layer (MossFormer2); 0 gives MossFormer.
    """

    def __init__(self, n_filters: int, n_src: int, dim: int, layers: int, qk_dim: int, expansion_factor: float,
                 group_size: int, rotary_dim: int, conv_kernel: int, dropout: float, fsmn_inner: int = 0,
                 fsmn_kernel: int = 39, fsmn_depth: int = 2):
        super().__init__()
        self.n_src, self.n_filters, self.dim = n_src, n_filters, dim
        self.norm = ChannelLayerNorm(n_filters)
        self.in_proj = nn.Conv1d(n_filters, dim, 1, bias=False)
        self.pos = ScaledSinusoidalEmbedding(dim)
        blocks = []
        for _ in range(layers):
            blocks.append(GatedAttentionLayer(dim, qk_dim, expansion_factor, group_size, rotary_dim, conv_kernel,
                                              dropout))
            if fsmn_inner:
                blocks.append(GatedFSMNBlock(dim, fsmn_inner, conv_kernel, fsmn_kernel, fsmn_depth, dropout))
        self.blocks = nn.Sequential(*blocks)
        self.out_norm = nn.LayerNorm(dim)
        self.act = nn.PReLU()
        # the 1x1 convolutions of the output stage, as Linear layers on [B, T, C] frames (same weights and MACs)
        self.to_sources = nn.Linear(dim, dim * n_src)
        self.gate_tanh = nn.Linear(dim, dim)
        self.gate_sigmoid = nn.Linear(dim, dim)
        self.to_filters = nn.Linear(dim, n_filters, bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, _, t = frames.shape
        x = self.in_proj(self.norm(frames)).transpose(1, 2)  # [B, T, dim]
        x = x + self.pos(t, device=x.device, dtype=x.dtype)
        x = x + self.out_norm(self.blocks(x))
        y = self.to_sources(self.act(x))  # [B, T, S * dim]
        y = y.reshape(b, t, self.n_src, self.dim)
        y = torch.tanh(self.gate_tanh(y)) * torch.sigmoid(self.gate_sigmoid(y))
        masks = torch.relu(self.to_filters(y))  # [B, T, S, N]
        return masks.permute(0, 2, 3, 1)


class _MossFormerBase(EncoderMaskerDecoder):
    task = "separation"
    needs_visual = False

    def __init__(self, n_src, sample_rate, n_filters, kernel_size, stride, dim, layers, qk_dim, expansion_factor,
                 group_size, rotary_dim, conv_kernel, dropout, fsmn_inner=0, fsmn_kernel=39, fsmn_depth=2):
        super().__init__()
        self.n_src, self.sample_rate = n_src, sample_rate
        self.encoder = ConvEncoder(n_filters, kernel_size, stride)
        self.masker = MossFormerMasker(n_filters, n_src, dim, layers, qk_dim, expansion_factor, group_size,
                                       rotary_dim, conv_kernel, dropout, fsmn_inner, fsmn_kernel, fsmn_depth)
        self.decoder = ConvDecoder(n_filters, kernel_size, stride)


class MossFormer(_MossFormerBase):
    """MossFormer: stacked gated single-head transformer blocks with joint local/global attention.

    `expansion_factor`: total width of the (v, u) hidden pair relative to `dim` (each is half of it);
    `qk_dim`: width of the shared query/key base; `group_size`: frames per quadratic-attention group;
    `rotary_dim`: q/k features that get rotary position embeddings; `conv_kernel`: depthwise kernel of FFConvM.
    """

    def __init__(self, n_src: int = 2, sample_rate: int = 8000, n_filters: int = 512, kernel_size: int = 16,
                 stride: int = 8, dim: int = 512, layers: int = 24, qk_dim: int = 128, expansion_factor: float = 4.0,
                 group_size: int = 256, rotary_dim: int = 32, conv_kernel: int = 17, dropout: float = 0.1):
        super().__init__(n_src, sample_rate, n_filters, kernel_size, stride, dim, layers, qk_dim, expansion_factor,
                         group_size, rotary_dim, conv_kernel, dropout)


class MossFormer2(_MossFormerBase):
    """MossFormer2: MossFormer with a gated dilated-FSMN ("RNN-free recurrent") block after every attention layer.

    `fsmn_inner`: bottleneck width of the recurrent block; `fsmn_kernel`: kernel of its dilated depthwise
    memory convolutions; `fsmn_depth`: number of densely connected memory layers (dilations 1, 2, 4, ...).
    Other arguments as for MossFormer.
    """

    def __init__(self, n_src: int = 2, sample_rate: int = 8000, n_filters: int = 512, kernel_size: int = 16,
                 stride: int = 8, dim: int = 512, layers: int = 24, qk_dim: int = 128, expansion_factor: float = 4.0,
                 group_size: int = 256, rotary_dim: int = 32, conv_kernel: int = 17, dropout: float = 0.1,
                 fsmn_inner: int = 256, fsmn_kernel: int = 39, fsmn_depth: int = 2):
        if fsmn_inner < 1:
            raise ValueError(f"fsmn_inner must be >= 1 (MossFormer has no recurrent block), got {fsmn_inner}")
        super().__init__(n_src, sample_rate, n_filters, kernel_size, stride, dim, layers, qk_dim, expansion_factor,
                         group_size, rotary_dim, conv_kernel, dropout, fsmn_inner, fsmn_kernel, fsmn_depth)
