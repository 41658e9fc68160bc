"""A learned long-window spectral filter for separated tracks (the trainable form of the test-time
`avss.inference.refine.spectral_filter`).

Given the mixture [B, L] and a separator's tracks [B, S, L], the tracks' 128-ms STFT magnitudes make per-bin
logits `power * log|E_s|`; a BLSTM over the frames (inputs: the log magnitudes of the mixture and of every
track) adds a correction to them. A softmax over the tracks turns the logits into masks that sum to one, the
masked mixture is resynthesised, and the output is `weight * filtered + (1 - weight) * tracks` with a learned
`weight`. The correction layer starts at zero and the weight at `init_weight`, so an untrained refiner is the
hand-made filter exactly (softmax of p * log|E| = |E|^p / sum |E|^p).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from avss.nn.stft import ISTFTDecoder, STFTEncoder

EPS = 1e-8


class SpectralRefiner(nn.Module):
    def __init__(self, n_src: int = 2, n_fft: int = 2048, hop: int = 512, hidden: int = 256, layers: int = 2,
                 power: float = 4.0, init_weight: float = 0.7):
        super().__init__()
        if not 0 < init_weight < 1:
            raise ValueError(f"init_weight must be strictly between 0 and 1, got {init_weight}")
        self.n_src, self.power = n_src, power
        self.stft, self.istft = STFTEncoder(n_fft, hop), ISTFTDecoder(n_fft, hop)
        n_freqs = n_fft // 2 + 1
        self.inputs = nn.Sequential(nn.LayerNorm((n_src + 1) * n_freqs), nn.Linear((n_src + 1) * n_freqs, hidden))
        self.rnn = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.correction = nn.Linear(2 * hidden, n_src * n_freqs)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        self.weight_logit = nn.Parameter(torch.tensor(math.log(init_weight / (1 - init_weight))))

    @property
    def weight(self) -> torch.Tensor:
        """Share of the filtered tracks in the output."""
        return torch.sigmoid(self.weight_logit)

    def forward(self, mix: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
        b, s, length = est.shape
        spec_mix = self.stft(mix)  # [B, 2, F, T]
        spec_est = self.stft(est)  # [B, S, 2, F, T]
        log_mix = torch.log(spec_mix.pow(2).sum(1) + EPS) / 2  # [B, F, T]
        log_est = torch.log(spec_est.pow(2).sum(2) + EPS) / 2  # [B, S, F, T]
        n_freqs, frames = log_mix.shape[-2:]
        features = torch.cat([log_mix.unsqueeze(1), log_est], 1).permute(0, 3, 1, 2).reshape(b, frames, -1)
        hidden, _ = self.rnn(self.inputs(features))
        correction = self.correction(hidden).view(b, frames, s, n_freqs).permute(0, 2, 3, 1)  # [B, S, F, T]
        masks = torch.softmax(self.power * log_est + correction, dim=1)
        filtered = self.istft(masks.unsqueeze(2) * spec_mix.unsqueeze(1), length)  # [B, S, L]
        return self.weight * filtered + (1 - self.weight) * est
