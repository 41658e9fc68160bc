"""TF-GridLite: complex masking on a fixed STFT with weights shared across frequency, a candidate for issue #5.

Why: TF-MaskNet maps each whole frame (all 257 bins) through one dense layer, and it fits a fixed batch fast but
learns little that carries to new mixtures (README). Here every time-frequency bin carries a small embedding,
and each block runs one residual BLSTM along frequency inside every frame, then one along time for every
frequency. The same weights serve every bin, so a harmonic pattern learned in one band is known in all of them.
This is the grid idea of TF-GridNet (Wang et al., 2023), simplified: no frequency unfolding, no full-band
attention, and masks instead of direct complex mapping.
"""
from __future__ import annotations

import torch
from torch import nn

from avss.models.tf_masknet import ComplexMaskSeparator
from avss.nn.rnn_stack import ResidualBLSTM
from avss.nn.stft import ISTFTDecoder, STFTEncoder, compressed_spectrum


class GridBlock(nn.Module):
    """[B, D, F, T] -> same shape: a residual BLSTM over frequency in each frame, then one over time in each bin."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.along_frequency = ResidualBLSTM(dim, hidden)
        self.along_time = ResidualBLSTM(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, f, t = x.shape
        frames = x.permute(0, 3, 2, 1).reshape(b * t, f, d)
        x = self.along_frequency(frames).view(b, t, f, d)
        bins = x.permute(0, 2, 1, 3).reshape(b * f, t, d)
        return self.along_time(bins).view(b, f, t, d).permute(0, 3, 1, 2)


class TFGridLite(ComplexMaskSeparator):
    def __init__(self, n_src: int = 2, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128, dim: int = 16,
                 hidden: int = 32, blocks: int = 2, compress: float = 0.3, eps: float = 1e-8):
        super().__init__()
        self.n_src, self.sample_rate = n_src, sample_rate
        self.compress, self.eps = compress, eps
        self.encoder = STFTEncoder(n_fft, hop)
        self.decoder = ISTFTDecoder(n_fft, hop)
        self.embed = nn.Conv2d(2, dim, 3, padding=1)
        self.blocks = nn.Sequential(*(GridBlock(dim, hidden) for _ in range(blocks)))
        self.head = nn.Conv2d(dim, 2 * n_src, 3, padding=1)

    def estimate_masks(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 2, F, T] spectrum -> complex masks [B, S, 2, F, T], from the spectrum with its magnitude
        power-law compressed (as TF-MaskNet's complex features)."""
        b, _, f, t = spec.shape
        _, compressed = compressed_spectrum(spec, self.compress, self.eps)
        hidden = self.blocks(self.embed(compressed))
        return self.head(hidden).view(b, self.n_src, 2, f, t)
