"""SuDoRM-RF (Tzinis, Wang & Smaragdis, "Sudo rm -rf: efficient networks for universal audio source separation",
2020), a candidate CPU-budget model for issue #5: a learned encoder, `blocks` U-ConvBlocks (avss.nn.uconv) and
one mask per source over the encoder's frames. The paper works at 8 kHz with a 21-sample window (hop 10), 512
basis filters, 128 bottleneck and 512 hidden channels, depth 4 and 16 blocks (the "1.0x" model); the configs
here scale the window to the sample rate and the widths and block count down to the CPU budget.
"""
from __future__ import annotations

import torch
from torch import nn

from avss.models.base import EncoderMaskerDecoder
from avss.models.convtasnet import make_mask_activation
from avss.nn.codecs import ConvDecoder, ConvEncoder
from avss.nn.norms import make_norm
from avss.nn.uconv import UConvBlock


class UConvMasker(nn.Module):
    """norm -> 1x1 bottleneck -> U-ConvBlocks -> PReLU -> 1x1 to n_src masks [B, S, N, T]."""

    def __init__(self, n_filters: int, n_src: int, bottleneck: int, hidden: int, blocks: int, depth: int,
                 kernel: int, norm: str, mask_act: str):
        super().__init__()
        self.n_src, self.n_filters = n_src, n_filters
        self.bottleneck = nn.Sequential(make_norm(norm, n_filters), nn.Conv1d(n_filters, bottleneck, 1))
        self.blocks = nn.Sequential(*(UConvBlock(bottleneck, hidden, depth, kernel, norm) for _ in range(blocks)))
        self.head = nn.Sequential(nn.PReLU(), nn.Conv1d(bottleneck, n_src * n_filters, 1))
        self.mask_act = make_mask_activation(mask_act)

    def forward(self, frames: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        """`offset` [B, bottleneck, T]: added to the bottleneck features (a second pass's view of its first)."""
        b, _, t = frames.shape
        features = self.bottleneck(frames)
        features = self.blocks(features if offset is None else features + offset)
        return self.mask_act(self.head(features).view(b, self.n_src, self.n_filters, t))


class SuDoRMRF(EncoderMaskerDecoder):
    def __init__(self, n_src: int = 2, sample_rate: int = 8000, n_filters: int = 512, kernel_size: int = 21,
                 stride: int | None = None, bottleneck: int = 128, hidden: int = 512, blocks: int = 16,
                 depth: int = 4, conv_kernel: int = 5, norm: str = "gLN", mask_act: str = "sigmoid"):
        super().__init__()
        self.n_src, self.sample_rate = n_src, sample_rate
        stride = stride or kernel_size // 2
        self.encoder = ConvEncoder(n_filters, kernel_size, stride)
        self.masker = UConvMasker(n_filters, n_src, bottleneck, hidden, blocks, depth, conv_kernel, norm, mask_act)
        self.decoder = ConvDecoder(n_filters, kernel_size, stride)
