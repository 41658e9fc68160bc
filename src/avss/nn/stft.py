"""Fixed (non-learned) STFT analysis / synthesis for time-frequency models.

`STFTEncoder(n_fft, hop)`: waveform [..., L] -> real/imag stacked spectrogram [..., 2, F, T] with F = n_fft // 2 + 1
and T = 1 + L // hop (centred frames). `ISTFTDecoder(n_fft, hop)`: [..., 2, F, T] -> waveform [..., length] of a
requested length (trimmed or zero-padded). Both use the same periodic Hann window, so decoding an encoding gives
the input back (up to float error) for any length >= n_fft // 2 + 1 (shorter inputs: see `STFTEncoder.forward`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "rect": torch.ones}


def _window(kind: str, n_fft: int) -> torch.Tensor:
    if kind not in WINDOWS:
        raise ValueError(f"unknown window {kind!r}; choose one of {sorted(WINDOWS)}")
    return WINDOWS[kind](n_fft) if kind == "rect" else WINDOWS[kind](n_fft, periodic=True)


class _STFTBase(nn.Module):
    def __init__(self, n_fft: int = 256, hop: int = 128, window: str = "hann"):
        super().__init__()
        if not 0 < hop <= n_fft:
            raise ValueError(f"hop={hop} must be in 1..n_fft={n_fft}")
        self.n_fft, self.hop = n_fft, hop
        self.n_freqs = n_fft // 2 + 1
        # not persistent: a fixed window is no model state, and checkpoints stay independent of it
        self.register_buffer("window", _window(window, n_fft), persistent=False)

    def n_frames(self, length: int) -> int:
        return 1 + length // self.hop


class STFTEncoder(_STFTBase):
    """[..., L] waveform -> [..., 2, F, T] (real, imag) spectrogram; torch.stft with center=True."""

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        lead, length = wav.shape[:-1], wav.shape[-1]
        flat = wav.reshape(-1, length)
        # reflect padding (torch's default) needs more than n_fft // 2 samples; zero-pad very short inputs
        pad_mode = "reflect" if length > self.n_fft // 2 else "constant"
        spec = torch.stft(flat, self.n_fft, self.hop, window=self.window, center=True, pad_mode=pad_mode,
                          return_complex=True)  # [N, F, T]
        spec = torch.view_as_real(spec).permute(0, 3, 1, 2)  # [N, 2, F, T]
        return spec.reshape(*lead, *spec.shape[1:])


class ISTFTDecoder(_STFTBase):
    """[..., 2, F, T] (real, imag) spectrogram -> [..., length] waveform; inverse of `STFTEncoder`."""

    def forward(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        if spec.shape[-3] != 2 or spec.shape[-2] != self.n_freqs:
            raise ValueError(f"expected [..., 2, {self.n_freqs}, T], got {tuple(spec.shape)}")
        lead = spec.shape[:-3]
        if spec.is_meta:  # shape-only passes (MAC counting): torch.istft has no meta kernel, and costs no MACs
            return spec.new_empty(*lead, length)
        flat = spec.reshape(-1, *spec.shape[-3:]).permute(0, 2, 3, 1).contiguous()  # [N, F, T, 2]
        available = self.n_fft // 2 + self.hop * (flat.shape[2] - 1)  # samples the centred frames cover
        wav = torch.istft(torch.view_as_complex(flat), self.n_fft, self.hop, window=self.window, center=True,
                          length=min(length, available))
        if wav.shape[-1] < length:  # past the last frame: silence
            wav = F.pad(wav, (0, length - wav.shape[-1]))
        return wav.reshape(*lead, length)


def compressed_spectrum(spec: torch.Tensor, power: float, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., 2, F, T] -> (|X| [..., 1, F, T], the spectrum with its magnitude raised to `power` [..., 2, F, T])."""
    mag = spec.pow(2).sum(-3, keepdim=True).add(eps).sqrt()
    return mag, spec * mag.pow(power - 1)
