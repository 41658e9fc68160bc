"""Formant shifting: a training augmentation that changes a talker's vocal-tract length but not their pitch or
timing, so that with speed perturbation (which moves pitch and formants together) pitch and timbre vary
independently. Our training speech has one utterance from each of ~240 LibriSpeech talkers; unseen talkers
score 0.9 dB lower than seen ones (README "The validation set").

Method (source-filter, per STFT frame): the spectral envelope is the cepstrally smoothed log magnitude (quefrencies
below `lifter_ms`, shorter than the pitch period of any voice up to ~600 Hz); the frame is multiplied by
envelope(f / factor) / envelope(f), so a factor above 1 moves the formants up (a shorter vocal tract). The
harmonics, hence the pitch, and the phase stay where they are. The gain is clipped to +-`max_gain_db` where the
warped envelope meets near-silent bins.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import istft, stft


def spectral_envelope(log_magnitude: np.ndarray, n_fft: int, lifter: int) -> np.ndarray:
    """Cepstrally smoothed log magnitude: `log_magnitude` [..., n_fft // 2 + 1] keeping quefrencies < `lifter`."""
    cepstrum = np.fft.irfft(log_magnitude, n=n_fft, axis=-1)
    cepstrum[..., lifter:n_fft - lifter + 1] = 0.0
    return np.fft.rfft(cepstrum, n=n_fft, axis=-1).real


def warp_frequency_axis(values: np.ndarray, factor: float) -> np.ndarray:
    """values(f / factor) along the last axis, linearly interpolated; the edge value beyond the top bin."""
    bins = values.shape[-1]
    pos = np.clip(np.arange(bins) / factor, 0, bins - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, bins - 1)
    frac = pos - low
    return values[..., low] * (1 - frac) + values[..., high] * frac


def shift_formants(x: np.ndarray, factor: float, sample_rate: int, window_ms: float = 32.0,
                   lifter_ms: float = 1.5, max_gain_db: float = 20.0) -> np.ndarray:
    """`x` [L] (or [..., L]) with its formants moved by `factor` (1.0: unchanged), same length, float32."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"factor must be in [0.5, 2] (a relative formant frequency), not {factor!r}")
    x = np.asarray(x, dtype=np.float64)
    if factor == 1.0:
        return x.astype(np.float32)
    n_fft = int(2 ** np.ceil(np.log2(window_ms * sample_rate / 1000)))
    hop = n_fft // 4
    lifter = max(2, int(round(lifter_ms * sample_rate / 1000)))
    _, _, spec = stft(x, nperseg=n_fft, noverlap=n_fft - hop, boundary="even", padded=True, axis=-1)
    spec = np.moveaxis(spec, -2, -1)  # [..., frames, bins]
    envelope = spectral_envelope(np.log(np.abs(spec) + 1e-8), n_fft, lifter)
    limit = max_gain_db / 20 * np.log(10)
    gain = np.exp(np.clip(warp_frequency_axis(envelope, factor) - envelope, -limit, limit))
    _, y = istft(np.moveaxis(spec * gain, -1, -2), nperseg=n_fft, noverlap=n_fft - hop, boundary=True,
                 time_axis=-1, freq_axis=-2)
    length = x.shape[-1]
    y = y[..., :length]
    if y.shape[-1] < length:
        y = np.concatenate([y, np.zeros(y.shape[:-1] + (length - y.shape[-1],))], axis=-1)
    return y.astype(np.float32)
