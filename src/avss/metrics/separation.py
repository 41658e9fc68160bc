"""Signal-level separation metrics on NumPy arrays: SI-SNR, BSS-eval SDR (mir_eval), best permutation.

Shapes: estimates and references are [S, L] (or [L] for one source), the mixture is [L].
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

EPS = 1e-8


class MetricWarning(UserWarning):
    """A metric could not be computed for one input and was set to NaN."""


def describe_error(error: BaseException) -> str:
    """One short line for an exception raised by a metric library (pesq gives bytes messages)."""
    message = error.args[0] if error.args else ""
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    message = str(message).strip().splitlines()[0] if str(message).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def si_snr(est, ref, eps: float = EPS) -> np.ndarray:
    """Zero-mean scale-invariant SNR in dB along the last axis (broadcasts over leading axes)."""
    est = np.asarray(est, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    est = est - est.mean(axis=-1, keepdims=True)
    ref = ref - ref.mean(axis=-1, keepdims=True)
    gain = (est * ref).sum(axis=-1, keepdims=True) / ((ref * ref).sum(axis=-1, keepdims=True) + eps)
    target = gain * ref
    residual = est - target
    return 10.0 * np.log10(((target * target).sum(axis=-1) + eps) / ((residual * residual).sum(axis=-1) + eps))


def si_snr_improvement(est, ref, mix, eps: float = EPS) -> np.ndarray:
    """Per-source SI-SNRi [S]: SI-SNR(est_s, ref_s) - SI-SNR(mix, ref_s)."""
    est, ref = np.atleast_2d(est), np.atleast_2d(ref)
    mix = np.asarray(mix)
    return si_snr(est, ref, eps) - si_snr(mix[None, :], ref, eps)


def pairwise_si_snr(est, ref, eps: float = EPS) -> np.ndarray:
    """[S_est, S_ref] matrix whose entry (i, j) is SI-SNR(est_i, ref_j)."""
    est, ref = np.atleast_2d(est), np.atleast_2d(ref)
    return si_snr(est[:, None, :], ref[None, :, :], eps)


def best_permutation(est, ref) -> tuple[tuple[int, ...], float]:
    """Order of the estimates that maximises the mean SI-SNR.

    Returns (perm, mean SI-SNR) where est[perm[s]] pairs with ref[s]; reorder with `est[list(perm)]`.
    """
    pair = pairwise_si_snr(est, ref)
    n_src = pair.shape[1]
    if pair.shape[0] != n_src:
        raise ValueError(f"got {pair.shape[0]} estimates for {n_src} references")
    columns = np.arange(n_src)
    best_perm, best_score = tuple(range(n_src)), -np.inf
    for perm in itertools.permutations(range(n_src)):
        score = float(pair[list(perm), columns].mean())
        if score > best_score:
            best_perm, best_score = perm, score
    return best_perm, best_score


def bss_sdr(est, ref) -> np.ndarray:
    """Per-source SDR [S] from mir_eval's bss_eval_sources over all sources jointly, in the given order.

    Returns NaN for every source (with a MetricWarning) when mir_eval refuses the input, e.g. a silent
    reference or estimate.
    """
    est = np.atleast_2d(np.asarray(est, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    import mir_eval.separation  # noqa: PLC0415  (slow import, only needed here)

    try:
        with warnings.catch_warnings():
            # bss_eval_sources is marked deprecated in mir_eval 0.8 but remains the reference implementation
            warnings.simplefilter("ignore", FutureWarning)
            sdr, _sir, _sar, _perm = mir_eval.separation.bss_eval_sources(ref, est, compute_permutation=False)
    except Exception as error:  # noqa: BLE001  (mir_eval raises ValueError / LinAlgError on degenerate input)
        warnings.warn(MetricWarning(f"SDR set to NaN ({describe_error(error)})"), stacklevel=2)
        return np.full(ref.shape[0], np.nan)
    return np.asarray(sdr, dtype=np.float64)


def sdr_improvement(est, ref, mix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SDR [S], SDR of the mixture [S], SDRi [S]); the mixture is repeated as the estimate of every source."""
    ref = np.atleast_2d(ref)
    sdr = bss_sdr(est, ref)
    sdr_mix = bss_sdr(np.repeat(np.asarray(mix)[None, :], ref.shape[0], axis=0), ref)
    return sdr, sdr_mix, sdr - sdr_mix
