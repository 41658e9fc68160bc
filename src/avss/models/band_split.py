"""Band-split RNN: complex masking on a fixed STFT, with the spectrum cut into a few dozen sub-bands.

Why (issue #5): TF-GridLite shares its BLSTMs across all 257 bins, so every frame is a 257-step recurrence and
every bin a sequence of its own: 2.7 s per training step on 2 cores. Grouping bins into bands as in BSRNN (Luo
and Yu, 2023), narrow where speech has its harmonics and wider above 4 kHz, leaves ~28 bands: the grid blocks
then run on 9x fewer sequences, each band keeps its own input projection and mask head (what differs between
bands), and the sequence models stay shared (what carries across them).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avss.models.tf_gridlite import GridBlock
from avss.models.tf_masknet import FEATURES, ComplexMaskSeparator, feature_planes
from avss.nn.stft import ISTFTDecoder, STFTEncoder

# (up to this frequency in Hz, bands this wide in Hz): 125-Hz bands to 1 kHz, 250 Hz to 4 kHz, 500 Hz above
DEFAULT_BANDS = ((1000, 125), (4000, 250), (8000, 500))


def band_edges(n_fft: int, sample_rate: int, bands: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Contiguous [start, stop) bin ranges covering all n_fft // 2 + 1 bins; what the schedule leaves above its
    last frequency joins the last band."""
    n_freqs = n_fft // 2 + 1
    bin_hz = sample_rate / n_fft
    edges, start = [], 0
    for upto_hz, width_hz in bands:
        width = max(1, round(width_hz / bin_hz))
        upto = min(n_freqs, round(upto_hz / bin_hz))
        while start + width <= upto:
            edges.append((start, start + width))
            start += width
    if start < n_freqs:
        if edges and n_freqs - start < edges[-1][1] - edges[-1][0]:
            edges[-1] = (edges[-1][0], n_freqs)
        else:
            edges.append((start, n_freqs))
    return edges


class BandSplitRNN(ComplexMaskSeparator):
    def __init__(self, n_src: int = 2, sample_rate: int = 16000, n_fft: int = 512, hop: int = 256,
                 bands: Sequence[Sequence[float]] | None = None, dim: int = 64, hidden: int = 64,
                 blocks: int = 4, head_hidden: int = 128, band_norm: bool = True, features: str = "complex",
                 compress: float = 0.3, eps: float = 1e-8):
        super().__init__()
        if features not in FEATURES:
            raise ValueError(f"unknown features {features!r}; choose one of {sorted(FEATURES)}")
        self.features = features
        self.n_src, self.sample_rate = n_src, sample_rate
        self.compress, self.eps = compress, eps
        self.encoder = STFTEncoder(n_fft, hop)
        self.decoder = ISTFTDecoder(n_fft, hop)
        self.edges = band_edges(n_fft, sample_rate, DEFAULT_BANDS if bands is None else bands)
        widths = [stop - start for start, stop in self.edges]
        planes = FEATURES[features]
        self.split = nn.ModuleList(
            nn.Sequential(*([nn.LayerNorm(planes * w)] if band_norm else []), nn.Linear(planes * w, dim))
            for w in widths)
        self.blocks = nn.Sequential(*(GridBlock(dim, hidden) for _ in range(blocks)))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, head_hidden), nn.Tanh(),
                          nn.Linear(head_hidden, n_src * 2 * w))
            for w in widths)

    def estimate_masks(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 2, F, T] spectrum -> complex masks [B, S, 2, F, T]: each band's feature planes (`features`, as in
        TF-MaskNet) in a frame become one D-dimensional vector, the grid blocks run along bands and along time,
        and each band's head maps its vector back to that band's masks."""
        b, _, f, t = spec.shape
        frames = feature_planes(spec, self.features, self.compress, self.eps).permute(0, 3, 1, 2)  # [B, T, P, F]
        embedded = torch.stack([split(frames[..., start:stop].reshape(b, t, -1))
                                for split, (start, stop) in zip(self.split, self.edges)], dim=1)  # [B, K, T, D]
        hidden = self.blocks(embedded.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # [B, K, T, D]
        masks = [head(hidden[:, k]).view(b, t, self.n_src, 2, stop - start)
                 for k, (head, (start, stop)) in enumerate(zip(self.heads, self.edges))]
        return torch.cat(masks, dim=-1).permute(0, 2, 3, 4, 1)  # [B, S, 2, F, T]
