"""All metrics for one example: est [S, L], ref [S, L], mix [L] at one sample rate."""
from __future__ import annotations

import warnings

import numpy as np

from avss.metrics.align import LENGTH_TOLERANCE, length_note
from avss.metrics.perceptual import pesq_score, stoi_score
from avss.metrics.separation import MetricWarning, best_permutation, sdr_improvement, si_snr

# Per-file values, each averaged over sources. "*_mix" are the mixture's scores (the baseline of "*i").
METRIC_KEYS = ("SI-SNR", "SI-SNR_mix", "SI-SNRi", "SDR", "SDR_mix", "SDRi", "PESQ", "STOI")
# Headline metrics, in display order.
MAIN_METRICS = ("SI-SNRi", "SDRi", "PESQ", "STOI", "SI-SNR", "SDR")


def compute_metrics(est, ref, mix, sample_rate: int, *, permute: bool = True, pesq: bool = True,
                    stoi: bool = True) -> dict:
    """Metrics of the estimates `est` [S, L] against `ref` [S, L] with mixture `mix` [L].

    With `permute`, the estimates are first reordered by the permutation that maximises SI-SNR;
    otherwise the given order is kept (models whose output order is known). Lengths are trimmed to the
    shortest (a MetricWarning if they differ by more than 1%). Disabled or failed metrics are NaN.
    Returns {key: float for key in METRIC_KEYS} plus "perm": tuple with est index used for each ref.
    """
    est = np.atleast_2d(np.asarray(est, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    mix = np.asarray(mix, dtype=np.float64)
    if mix.ndim != 1:
        raise ValueError(f"mix must be [L], got shape {mix.shape}")
    if est.shape[0] != ref.shape[0]:
        raise ValueError(f"got {est.shape[0]} estimates for {ref.shape[0]} references")

    for label, length in (("estimates", est.shape[-1]), ("mixture", mix.shape[-1])):
        note = length_note(label, length, ref.shape[-1], LENGTH_TOLERANCE)
        if note:
            warnings.warn(MetricWarning(note), stacklevel=2)
    length = min(est.shape[-1], ref.shape[-1], mix.shape[-1])
    est, ref, mix = est[:, :length], ref[:, :length], mix[:length]

    n_src = ref.shape[0]
    perm = best_permutation(est, ref)[0] if permute and n_src > 1 else tuple(range(n_src))
    est = est[list(perm)]

    sisnr = si_snr(est, ref)
    sisnr_mix = si_snr(mix[None, :], ref)
    sdr, sdr_mix, sdri = sdr_improvement(est, ref, mix)
    nan = float("nan")
    pesq_value = float(np.mean([pesq_score(ref[s], est[s], sample_rate) for s in range(n_src)])) if pesq else nan
    stoi_value = float(np.mean([stoi_score(ref[s], est[s], sample_rate) for s in range(n_src)])) if stoi else nan
    return {
        "SI-SNR": float(sisnr.mean()),
        "SI-SNR_mix": float(sisnr_mix.mean()),
        "SI-SNRi": float((sisnr - sisnr_mix).mean()),
        "SDR": float(sdr.mean()),
        "SDR_mix": float(sdr_mix.mean()),
        "SDRi": float(sdri.mean()),
        "PESQ": pesq_value,
        "STOI": stoi_value,
        "perm": tuple(int(p) for p in perm),
    }
