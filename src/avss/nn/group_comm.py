"""Group communication (GC) and context codec building blocks for ultra-light separators (LiMuSE, GC3).

Group communication (Luo et al. 2021, "Ultra-lightweight speech separation via group communication"): the
C feature channels are split into G groups of C/G channels; one narrow module, its weights shared by all groups,
processes every group, and a transform-average-concatenate (TAC) step lets the groups exchange information.
A layer over C channels then costs about 1/G of the full-width layer in MACs and 1/G^2 in parameters.

Context codec (Luo et al. 2021, "Group communication with context codec for lightweight source separation"):
the frame sequence is cut into 50%-overlapping chunks of `context` frames; a context encoder (a short GC-TCN)
runs inside every chunk and its output is averaged into one vector per chunk, a sequence model runs on that
`context / 2` times shorter sequence, and a context decoder (another short GC-TCN) turns every chunk, plus its
sequence-model output, back into frames, which are overlap-added. The long-range model thus runs at a fraction
of the frame rate.

Tensor layout: features are [B, C, T] with the C channels ordered group by group ([B, G, C/G, T] viewed flat).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avss.nn.norms import GlobalLayerNorm
from avss.nn.tcn import TemporalBlock


class TAC(nn.Module):
    """Transform-average-concatenate across groups, with a residual connection.

    [B, G, C, T] -> [B, G, C, T]: every group is transformed (C -> H, PReLU), the transformed groups are averaged
    and transformed again (H -> H, PReLU), each group's transform is concatenated with that average and
    projected back (2H -> C, PReLU), normalised (gLN per group) and added to the input. The per-frame linear maps
    are 1x1 convolutions on [B*G, C, T], which avoids transposing the features.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.transform = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.PReLU())
        self.average = nn.Sequential(nn.Conv1d(hidden, hidden, 1), nn.PReLU())
        self.concat = nn.Sequential(nn.Conv1d(2 * hidden, channels, 1), nn.PReLU())
        self.norm = GlobalLayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, g, c, t = x.shape
        h = self.transform(x.reshape(b * g, c, t))  # [B*G, H, T]
        mean = self.average(h.view(b, g, -1, t).mean(dim=1))  # [B, H, T]
        mean = mean.unsqueeze(1).expand(b, g, -1, t).reshape(b * g, -1, t)
        y = self.norm(self.concat(torch.cat([h, mean], dim=1)))
        return x + y.view(b, g, c, t)


class GroupCommTCN(nn.Module):
    """A TCN over `channels` features in `groups` groups: before each of the `layers * stacks` dilated
    depthwise-separable conv blocks (dilations 1, 2, ..., 2^(layers-1) in each stack), a TAC step across groups.

    `channels` and `hidden` are totals over all groups: every group runs a block of channels/G -> hidden/G ->
    channels/G whose weights are shared by the groups; TAC uses 3 * hidden / G hidden units. [B, C, T] -> [B, C, T].
    """

    def __init__(self, channels: int, hidden: int, groups: int, layers: int, stacks: int = 1, kernel: int = 3,
                 dilated: bool = True):
        super().__init__()
        for name, value in (("channels", channels), ("hidden", hidden)):
            if value % groups:
                raise ValueError(f"{name}={value} is not divisible by groups={groups}")
        self.groups = groups
        c, h = channels // groups, hidden // groups
        dilations = [2**i if dilated else 1 for _ in range(stacks) for i in range(layers)]
        self.tac = nn.ModuleList(TAC(c, 3 * hidden // groups) for _ in dilations)
        self.blocks = nn.ModuleList(TemporalBlock(c, h, 0, kernel, d, norm="gLN") for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, t = x.shape
        x = x.view(b, self.groups, n // self.groups, t)
        for tac, block in zip(self.tac, self.blocks):
            x = tac(x)
            x, _ = block(x.reshape(b * self.groups, -1, t))  # TemporalBlock adds its residual itself
            x = x.view(b, self.groups, -1, t)
        return x.reshape(b, n, t)


class ContextCodec(nn.Module):
    """Context encoder -> `sequence` model at the chunk rate -> context decoder (see the module docstring).

    The encoder and decoder are GC-TCNs of `codec_layers` layers over `channels` (`codec_hidden` hidden, both
    totals over the `groups` groups); `sequence` is any [B, C, L] -> [B, C, L] module, run on one vector per chunk
    of `context` frames (chunks overlap by half, so L ~ 2T / context). [B, C, T] -> [B, C, T] for any T >= 1.
    """

    def __init__(self, sequence: nn.Module, channels: int, codec_hidden: int, groups: int, context: int = 32,
                 codec_layers: int = 2, kernel: int = 3):
        super().__init__()
        if context < 2 or context % 2:
            raise ValueError(f"context={context} must be an even number of frames >= 2")
        self.context, self.hop = context, context // 2
        self.encoder = GroupCommTCN(channels, codec_hidden, groups, codec_layers, kernel=kernel)
        self.sequence = sequence
        self.decoder = GroupCommTCN(channels, codec_hidden, groups, codec_layers, kernel=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        k, hop = self.context, self.hop
        n = math.ceil(t / hop)
        padded = F.pad(x, (hop, (n + 1) * hop - t))  # (n + 2) * hop frames: every frame is in exactly 2 chunks
        chunks = padded.unfold(-1, k, hop).permute(0, 2, 1, 3)  # [B, L, C, K], L = n + 1
        n_chunks = chunks.shape[1]
        chunks = chunks.reshape(b * n_chunks, c, k)
        summary = self.encoder(chunks).mean(dim=-1).view(b, n_chunks, c).transpose(1, 2)  # [B, C, L]
        context = self.sequence(summary).transpose(1, 2).reshape(b * n_chunks, c, 1)
        decoded = self.decoder(chunks + context)  # [B*L, C, K]
        decoded = decoded.view(b, n_chunks, c * k).transpose(1, 2)  # [B, C*K, L] for fold (overlap-add)
        merged = F.fold(decoded, output_size=(1, padded.shape[-1]), kernel_size=(1, k), stride=(1, hop))
        return merged.view(b, c, -1)[..., hop:hop + t]
