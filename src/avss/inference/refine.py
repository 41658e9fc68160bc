"""Test-time refinement of a chunk's estimates: averaging several passes, and mixture consistency.

- Passes: the model runs on the chunk delayed by a few samples (`shifts` offsets spread over one analysis hop,
  so each pass sees a different framing) and, with `flip_sign`, on the negated chunk. Each pass's tracks are
  put in the first pass's order and polarity (SI-SNR-trained models may return a track negated), then averaged.
- Mixture consistency: the averaged tracks are scaled to explain the mixture (least squares) and the remaining
  residual is shared equally among them, so that they sum to the mixture (Wisdom et al., "Differentiable
  consistency constraints for improved deep speech enhancement", 2019). Without the scaling the projection is
  harmful: a scale-invariant model's tracks have arbitrary gains.
- Spectral filter: the tracks' long-window STFT magnitudes (128 ms) make a Wiener-like mask
  |S_i|^p / sum_j |S_j|^p that is applied to the mixture's STFT, and the filtered tracks are blended with the
  tracks themselves. A time-domain model with a 1-2 ms encoder resolves no harmonics; the long window does, and
  the mask keeps each track's harmonics and drops the other speaker's between them.

Chosen on the validation mixtures (12 LibriSpeech speakers, 100 x 4 s; `scripts/probe_refinement.py`):
passes and consistency with the step-27001 sudormrf_small (6.88 dB SI-SNRi in one pass, 7.28 refined), the
spectral filter's window, power and weight with the step-31801 one. Those speakers were training speakers
(README "The validation set"); on the held-out ones the settings are within 0.03 dB of the best scanned
(README "Test-time refinement").
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from avss.nn.consistency import consistent_tracks

# Defaults of inference.py, separate_video.py and Separator.separate (README "Test-time refinement"):
# 2 shifts x 2 polarities = 4 passes per chunk, tracks made to sum to the mixture, 70 % spectrally filtered.
SHIFTS, FLIP_SIGN, MIXTURE_CONSISTENCY, SPECTRAL_FILTER = 2, True, True, 0.7
FILTER_WINDOW_MS, FILTER_POWER = 128.0, 4.0  # best on validation among 16-512 ms and powers 1-6
DEFAULT_REFINEMENT = {"shifts": SHIFTS, "flip_sign": FLIP_SIGN, "mixture_consistency": MIXTURE_CONSISTENCY,
                      "spectral_filter": SPECTRAL_FILTER}
NO_REFINEMENT = {"shifts": 1, "flip_sign": False, "mixture_consistency": False, "spectral_filter": 0.0}  # one pass


def check_refinement(shifts=SHIFTS, flip_sign=FLIP_SIGN, mixture_consistency=MIXTURE_CONSISTENCY,
                     spectral_filter=SPECTRAL_FILTER, **unknown) -> None:
    """ValueError unless shifts is an integer >= 1, the two switches are booleans, spectral_filter is a weight
    in [0, 1] and nothing else is given."""
    if unknown:
        raise ValueError(f"unknown refinement setting(s) {sorted(unknown)}: the settings are shifts, flip_sign, "
                         "mixture_consistency and spectral_filter")
    if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 1:
        raise ValueError(f"shifts must be a whole number of passes >= 1 (1: no shift averaging), got {shifts!r}")
    for name, value in (("flip_sign", flip_sign), ("mixture_consistency", mixture_consistency)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    if isinstance(spectral_filter, bool) or not isinstance(spectral_filter, (int, float)) \
            or not 0 <= spectral_filter <= 1:
        raise ValueError(f"spectral_filter must be a weight from 0 (off) to 1 (only the filtered tracks), "
                         f"got {spectral_filter!r}")


def shift_offsets(hop: int, shifts: int) -> list[int]:
    """`shifts` distinct delays in samples spread evenly over one hop (fewer if the hop has fewer samples)."""
    return sorted({k * hop // shifts for k in range(shifts)})


def match_tracks(reference: np.ndarray, current: np.ndarray, reorder: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(perm, signs) such that `current[perm] * signs[:, None]` best matches `reference` ([S, n] each).

    Tracks are paired by the magnitude of their normalised correlation (Hungarian assignment; identity when
    `reorder` is False or nothing is gained) and each paired track gets the sign of its correlation. Near-silent
    tracks keep their order and sign.
    """
    n_src = reference.shape[0]
    identity = np.arange(n_src)
    norms = np.outer(np.linalg.norm(reference, axis=-1), np.linalg.norm(current, axis=-1))
    if norms.max() < 1e-16:
        return identity, np.ones(n_src, dtype=np.float32)
    score = (reference @ current.T) / (norms + 1e-8)  # [reference track, current track]
    perm = identity
    if reorder and n_src > 1:
        rows, cols = linear_sum_assignment(-np.abs(score))
        candidate = cols[np.argsort(rows)]
        if np.abs(score[identity, candidate]).sum() > np.abs(score[identity, identity]).sum() + 1e-6:
            perm = candidate
    signs = np.where(score[identity, perm] < 0, -1.0, 1.0).astype(np.float32)
    return perm, signs


def average_passes(passes: list[np.ndarray], reorder: bool = True) -> np.ndarray:
    """Mean of several [S, n] estimates of the same chunk, each aligned to the first (`match_tracks`)."""
    first = passes[0]
    total = first.astype(np.float32, copy=True)
    for est in passes[1:]:
        perm, signs = match_tracks(first, est, reorder)
        total += est[perm] * signs[:, None]
    return total / len(passes)


def mixture_consistency(est: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Tracks [S, n] scaled by least squares to explain `mix` [n], plus an equal share of what is left."""
    tracks = consistent_tracks(torch.from_numpy(est.astype(np.float64))[None],
                               torch.from_numpy(mix.astype(np.float64))[None])[0]
    return tracks.numpy().astype(np.float32)


def spectral_filter(est: np.ndarray, mix: np.ndarray, sample_rate: int, weight: float = SPECTRAL_FILTER,
                    window_ms: float = FILTER_WINDOW_MS, power: float = FILTER_POWER) -> np.ndarray:
    """Tracks [S, n] blended with `mix` [n] filtered by their own STFT magnitudes: `weight` * filtered +
    (1 - weight) * tracks. Filtered tracks sum to the mixture (the mask sums to one in every bin)."""
    if weight == 0:
        return est
    n_fft = max(16, round(window_ms * sample_rate / 1000))
    length = mix.shape[-1]
    pad = max(0, n_fft - length)  # the STFT's reflection padding needs at least one window of signal
    window = torch.hann_window(n_fft, dtype=torch.float64)

    def stft(x: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(0, pad)]))
        return torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True)

    magnitude = stft(est).abs() ** power
    mask = magnitude / magnitude.sum(0, keepdim=True).clamp_min(1e-30)
    filtered = torch.istft(mask * stft(mix), n_fft, n_fft // 4, window=window, length=length + pad)
    filtered = filtered[..., :length].numpy().astype(np.float32)
    return (weight * filtered + (1 - weight) * est).astype(np.float32)
