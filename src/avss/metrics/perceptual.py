"""Perceptual metrics for one source: PESQ (pesq package) and classic STOI (pystoi).

Both return NaN with a one-line MetricWarning instead of raising when the input cannot be scored
(silence, too short, ...), so that one bad file does not stop an evaluation.
"""
from __future__ import annotations

import warnings

import numpy as np

from avss.io.audio import resample
from avss.metrics.separation import MetricWarning, describe_error

PESQ_WB_RATE = 16000
PESQ_NB_RATE = 8000


def pesq_mode(sample_rate: int) -> tuple[int, str]:
    """(rate PESQ runs at, mode): nb at 8 kHz, wb at 16 kHz, wb after resampling to 16 kHz otherwise."""
    if sample_rate == PESQ_NB_RATE:
        return PESQ_NB_RATE, "nb"
    return PESQ_WB_RATE, "wb"


def pesq_score(ref, est, sample_rate: int) -> float:
    """PESQ of `est` against `ref` (both [L] at `sample_rate`); NaN (with a MetricWarning) if pesq fails."""
    from pesq import pesq  # noqa: PLC0415

    rate, mode = pesq_mode(sample_rate)
    ref = np.asarray(ref, dtype=np.float32)
    est = np.asarray(est, dtype=np.float32)
    if rate != sample_rate:
        ref = resample(ref, sample_rate, rate)
        est = resample(est, sample_rate, rate)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # pesq divides by the peak: 0/0 on silence
            return float(pesq(rate, ref, est, mode))
    except Exception as error:  # noqa: BLE001  (NoUtterancesError, BufferTooShortError, ...)
        warnings.warn(MetricWarning(f"PESQ set to NaN ({describe_error(error)})"), stacklevel=2)
        return float("nan")


def stoi_score(ref, est, sample_rate: int) -> float:
    """Classic (not extended) STOI of `est` against `ref` at the file's rate; NaN if it cannot be computed."""
    from pystoi import stoi  # noqa: PLC0415

    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(stoi(ref, est, sample_rate, extended=False))
    except Exception as error:  # noqa: BLE001
        warnings.warn(MetricWarning(f"STOI set to NaN ({describe_error(error)})"), stacklevel=2)
        return float("nan")
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        # pystoi returns the sentinel 1e-5 when too little non-silent speech is left
        warnings.warn(MetricWarning("STOI set to NaN (too little non-silent audio, under 30 STFT frames)"),
                      stacklevel=2)
        return float("nan")
    return value
