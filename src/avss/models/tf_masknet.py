"""TF-MaskNet: complex time-frequency masking on a fixed STFT, a candidate CPU-budget model.

Why this design (issue #5: most SI-SNRi per CPU-hour): a 512/128 STFT runs the masker at 125 frames per second,
16x fewer than a Conv-TasNet with a 1 ms hop, while its oracle masks reach ~14 dB on LibriSpeech test-other.
The masker sees the power-law compressed magnitude and/or complex spectrum of the level-normalised mixture
(`features`) and predicts one complex ratio mask per speaker (so it can correct phase; `mask="magnitude"`: a
sigmoid mask on the mixture phase instead); training is end to end on the waveform (SI-SNR after the iSTFT).
Maskers: `blstm` (residual BLSTM stack, as in uPIT-style separators) or `tcn`
(Conv-TasNet's temporal convolution network over STFT frames). Measured so far (README): it trains 6-8x more
audio per CPU-second than `convtasnet_small` but learns much less per hour of audio. It fits a fixed batch fast
(scripts/fit_fixed_batch.py), so what fails is generalisation, not the masking path.
"""
from __future__ import annotations

import torch
from torch import nn

from avss.models.base import ExportCore, Separator
from avss.nn.rnn_stack import ResidualBLSTMStack
from avss.nn.stft import ISTFTDecoder, STFTEncoder, compressed_spectrum
from avss.nn.tcn import TemporalConvNet

MASKERS = ("blstm", "tcn")
FEATURES = {"complex": 2, "magnitude": 1, "both": 3}  # input planes per frequency bin
MASKS = {"complex": 2, "magnitude": 1}  # output planes per frequency bin and speaker


def feature_planes(spec: torch.Tensor, features: str, power: float, eps: float) -> torch.Tensor:
    """[B, 2, F, T] -> [B, P, F, T]: the power-law compressed magnitude |X|^c and/or the complex spectrum with
    that magnitude (c evens out the dynamic range; the magnitude plane spares the network computing |X|, and
    unlike the complex planes it does not change with the phase)."""
    mag, compressed = compressed_spectrum(spec, power, eps)
    planes = []
    if features in ("magnitude", "both"):
        planes.append(mag.pow(power))
    if features in ("complex", "both"):
        planes.append(compressed)
    return torch.cat(planes, dim=1)


class ComplexMaskSeparator(Separator):
    """Shared frame of the STFT-masking models: level-normalised STFT in, one complex mask per speaker from
    `estimate_masks` ([B, 2, F, T] -> [B, S, 2, F, T]), masked spectra back through the iSTFT. Subclasses set
    `encoder` (STFTEncoder) and `decoder` (ISTFTDecoder)."""

    def analyze(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture [B, L] -> (STFT of the level-normalised mixture [B, 2, F, T], level [B, 1])."""
        scale = mix.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-5)  # level-free; silence stays finite
        return self.encoder(mix / scale), scale

    def estimate_masks(self, spec: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply_masks(self, masks: torch.Tensor, spec: torch.Tensor, scale: torch.Tensor, length: int) -> torch.Tensor:
        """Complex multiplication of each mask with the mixture spectrum, iSTFT, level restored: [B, S, L]."""
        re = masks[:, :, 0] * spec[:, None, 0] - masks[:, :, 1] * spec[:, None, 1]
        im = masks[:, :, 0] * spec[:, None, 1] + masks[:, :, 1] * spec[:, None, 0]
        est = self.decoder(torch.stack([re, im], dim=2), length)
        return est * scale.unsqueeze(1)

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        spec, scale = self.analyze(mix)
        return self.apply_masks(self.estimate_masks(spec), spec, scale, mix.shape[-1])

    def export_parts(self):
        def prepare(mix):
            spec, scale = self.analyze(mix)
            return (spec,), (spec, scale, mix.shape[-1])

        def finish(masks, state):
            return self.apply_masks(masks, *state)

        return prepare, ExportCore(self, "estimate_masks"), finish


class TFMaskNet(ComplexMaskSeparator):
    def __init__(self, n_src: int = 2, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128,
                 masker: str = "blstm", dim: int = 256, hidden: int = 256, layers: int = 4, dropout: float = 0.0,
                 tcn_blocks: int = 8, tcn_kernel: int = 3, compress: float = 0.3, features: str = "complex",
                 input_norm: bool = True, mask: str = "complex", eps: float = 1e-8):
        super().__init__()
        if masker not in MASKERS:
            raise ValueError(f"unknown masker {masker!r}; choose one of {MASKERS}")
        if features not in FEATURES:
            raise ValueError(f"unknown features {features!r}; choose one of {sorted(FEATURES)}")
        if mask not in MASKS:
            raise ValueError(f"unknown mask {mask!r}; choose one of {sorted(MASKS)}")
        self.mask = mask
        self.features = features
        self.n_src, self.sample_rate = n_src, sample_rate
        self.compress, self.eps = compress, eps
        self.encoder = STFTEncoder(n_fft, hop)
        self.decoder = ISTFTDecoder(n_fft, hop)
        n_freqs = self.encoder.n_freqs
        self.n_freqs = n_freqs
        self.masker_kind = masker
        # input_norm=False keeps each frame's level: a per-frame LayerNorm makes quiet and loud frames look alike
        norm = [nn.LayerNorm(dim)] if input_norm else []
        self.input_proj = nn.Sequential(nn.Linear(FEATURES[features] * n_freqs, dim), *norm)
        if masker == "blstm":
            self.masker = ResidualBLSTMStack(dim, hidden, layers, dropout)
        else:  # `layers` repeats of `tcn_blocks` dilated blocks, without skip paths
            self.masker = TemporalConvNet(dim, hidden, 0, tcn_kernel, tcn_blocks, layers, "gLN")
        self.head = nn.Linear(dim, n_src * MASKS[mask] * n_freqs)

    def input_features(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 2, F, T] -> [B, T, P*F]: the feature planes of every bin, frame by frame."""
        b, _, f, t = spec.shape
        return feature_planes(spec, self.features, self.compress, self.eps).reshape(b, -1, t).transpose(1, 2)

    def estimate_masks(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 2, F, T] spectrum -> complex masks [B, S, 2, F, T] (the learned part; exportable on its own).
        mask="magnitude": a sigmoid mask in [0, 1] that keeps the mixture phase (imaginary part 0)."""
        b, _, f, t = spec.shape
        hidden = self.input_proj(self.input_features(spec))
        if self.masker_kind == "blstm":
            hidden = self.masker(hidden)
        else:
            hidden = self.masker(hidden.transpose(1, 2)).transpose(1, 2)
        masks = self.head(hidden).view(b, t, self.n_src, MASKS[self.mask], f).permute(0, 2, 3, 4, 1)
        if self.mask == "magnitude":
            masks = torch.cat([torch.sigmoid(masks), torch.zeros_like(masks)], dim=2)
        return masks
