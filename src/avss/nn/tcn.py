"""Temporal convolutional network of Conv-TasNet: stacks of dilated depthwise-separable 1-D conv blocks."""
from torch import nn

from avss.nn.norms import make_norm


class TemporalBlock(nn.Module):
    """1x1 conv -> PReLU -> norm -> dilated depthwise conv -> PReLU -> norm -> (residual, skip) 1x1 convs."""

    def __init__(self, in_ch: int, hidden: int, skip_ch: int, kernel: int, dilation: int, norm: str = "gLN"):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_ch, hidden, 1),
            nn.PReLU(),
            make_norm(norm, hidden),
            nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2, groups=hidden),
            nn.PReLU(),
            make_norm(norm, hidden),
        )
        self.res = nn.Conv1d(hidden, in_ch, 1)
        self.skip = nn.Conv1d(hidden, skip_ch, 1) if skip_ch else None

    def forward(self, x):
        y = self.body(x)
        return x + self.res(y), (self.skip(y) if self.skip is not None else None)


class TemporalConvNet(nn.Module):
    """`repeats` stacks of `blocks` TemporalBlocks with dilations 1, 2, ..., 2^(blocks-1); returns the skip sum."""

    def __init__(self, channels: int, hidden: int, skip_ch: int, kernel: int = 3, blocks: int = 8,
                 repeats: int = 3, norm: str = "gLN"):
        super().__init__()
        self.layers = nn.ModuleList(
            TemporalBlock(channels, hidden, skip_ch, kernel, 2**b, norm) for _ in range(repeats) for b in range(blocks)
        )
        self.use_skip = bool(skip_ch)

    def forward(self, x, between=None):
        """`between(i, x)` (optional) may modify the features before layer i (used for fusion)."""
        skip_sum = 0.0
        for i, layer in enumerate(self.layers):
            if between is not None:
                x = between(i, x)
            x, skip = layer(x)
            if self.use_skip:
                skip_sum = skip_sum + skip
        return skip_sum if self.use_skip else x
