"""U-ConvBlock (Tzinis et al., "Sudo rm -rf: efficient networks for universal audio source separation", 2020):
successive strided depthwise convolutions build a multi-resolution pyramid of the features, which is summed back
from the coarsest level upwards. Only the two 1x1 projections run at the full frame rate; the long receptive
field comes from the cheap downsampled levels, which is what makes the block economical on a CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avss.nn.norms import make_norm


class UConvBlock(nn.Module):
    """x [B, C_in, T] -> x + project(pyramid(expand(x))), same shape.

    expand: 1x1 conv to `hidden` channels, PReLU, norm. pyramid: level 0 is a depthwise conv (stride 1) of the
    expanded features, level q a depthwise conv with stride 2 of level q-1 (q = 1..depth-1), each followed by a
    norm; then from the coarsest level up, each level plus the nearest-neighbour upsampled sum of the levels below
    it. project: PReLU, norm, 1x1 conv back to C_in.
    """

    def __init__(self, channels: int, hidden: int, depth: int = 4, kernel: int = 5, norm: str = "gLN"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth}")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd ('same' padding), not {kernel}")
        self.expand = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.PReLU(), make_norm(norm, hidden))
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv1d(hidden, hidden, kernel, stride=1 if q == 0 else 2, padding=kernel // 2,
                                    groups=hidden),
                          make_norm(norm, hidden))
            for q in range(depth))
        self.project = nn.Sequential(nn.PReLU(), make_norm(norm, hidden), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = self.expand(x)
        pyramid = []
        for conv in self.levels:
            level = conv(level)
            pyramid.append(level)
        summed = pyramid[-1]
        for finer in reversed(pyramid[:-1]):
            summed = finer + F.interpolate(summed, size=finer.shape[-1], mode="nearest")
        return x + self.project(summed)
