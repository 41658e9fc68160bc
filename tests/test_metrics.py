"""Metric functions against hand-computed values and the reference packages (mir_eval, pesq, pystoi)."""
import warnings

import mir_eval.separation
import numpy as np
import pytest
from pesq import pesq as reference_pesq
from pystoi import stoi as reference_stoi

from avss.metrics import (
    MetricWarning,
    align_signals,
    best_permutation,
    compute_metrics,
    pesq_score,
    si_snr,
    si_snr_improvement,
    stoi_score,
)


def voiced(rate: int, seconds: float, f0: float, seed: int) -> np.ndarray:
    """Speech-like test signal: harmonics of f0 with a syllable-rate envelope, pauses and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    vibrato = f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(vibrato) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 < rate / 2)
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t + seed), 0, None) ** 0.7  # on/off "syllables"
    return (0.2 * harmonics * envelope + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def two_speakers(rate: int = 16000, seconds: float = 2.0):
    ref = np.stack([voiced(rate, seconds, 115.0, 1), voiced(rate, seconds, 220.0, 2)])
    mix = ref.sum(0)
    rng = np.random.default_rng(3)
    est = ref + 0.15 * ref[::-1] + 0.01 * rng.standard_normal(ref.shape).astype(np.float32)
    return est, ref, mix


def quiet_compute(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetricWarning)  # these clean inputs must not trigger NaN fallbacks
        return compute_metrics(*args, **kwargs)


def test_si_snr_hand_computed():
    n = 8000
    k = np.arange(n)
    ref = np.sin(2 * np.pi * 50 * k / n)
    orth = np.sin(2 * np.pi * 73 * k / n)  # orthogonal to ref over whole periods, same energy
    est = 3.0 * (ref + 0.1 * orth) + 0.7  # scale and DC offset must not matter
    # target energy 1, residual energy 0.01 -> 10 * log10(100) = 20 dB
    assert si_snr(est, ref) == pytest.approx(20.0, abs=1e-6)
    # mixture ref + orth has SI-SNR 0 dB, so the improvement is 20 dB
    assert si_snr_improvement(est[None], ref[None], ref + orth)[0] == pytest.approx(20.0, abs=1e-6)
    assert si_snr(ref, ref) > 70


@pytest.mark.filterwarnings("ignore:mir_eval.separation.bss_eval_sources:FutureWarning")
def test_sdr_matches_mir_eval():
    est, ref, mix = two_speakers(seconds=0.6)
    got = quiet_compute(est, ref, mix, 16000, permute=False, pesq=False, stoi=False)
    sdr, _, _, _ = mir_eval.separation.bss_eval_sources(ref.astype(np.float64), est.astype(np.float64),
                                                        compute_permutation=False)
    sdr_mix, _, _, _ = mir_eval.separation.bss_eval_sources(ref.astype(np.float64), np.stack([mix, mix]),
                                                            compute_permutation=False)
    assert got["SDR"] == pytest.approx(sdr.mean(), abs=0.05)
    assert got["SDR_mix"] == pytest.approx(sdr_mix.mean(), abs=0.05)
    assert got["SDRi"] == pytest.approx((sdr - sdr_mix).mean(), abs=0.05)
    assert got["SDRi"] > 10


def test_pesq_wideband_and_narrowband_match_pesq():
    est, ref, _ = two_speakers(16000, 2.0)
    expected = reference_pesq(16000, ref[0], est[0], "wb")
    assert pesq_score(ref[0], est[0], 16000) == pytest.approx(expected, abs=0.02)
    est8, ref8, _ = two_speakers(8000, 2.0)
    expected_nb = reference_pesq(8000, ref8[1], est8[1], "nb")
    assert pesq_score(ref8[1], est8[1], 8000) == pytest.approx(expected_nb, abs=0.02)
    assert 1.0 < expected < 4.7 and 1.0 < expected_nb < 4.7


def test_pesq_other_rate_resamples_to_wideband():
    est, ref, _ = two_speakers(24000, 1.0)
    value = pesq_score(ref[0], est[0], 24000)
    est16, ref16, _ = two_speakers(16000, 1.0)
    assert value == pytest.approx(pesq_score(ref16[0], est16[0], 16000), abs=0.3)


def test_pesq_failure_gives_nan_and_warning():
    silence = np.zeros(16000, np.float32)
    with pytest.warns(MetricWarning, match="PESQ"):
        assert np.isnan(pesq_score(silence, silence, 16000))
    with pytest.warns(MetricWarning, match="PESQ"):  # shorter than pesq's 1/4 s minimum
        assert np.isnan(pesq_score(np.ones(100), np.ones(100), 16000))


def test_stoi_matches_pystoi():
    est, ref, _ = two_speakers(16000, 2.0)
    expected = reference_stoi(ref[1], est[1], 16000, extended=False)
    assert stoi_score(ref[1], est[1], 16000) == pytest.approx(expected, abs=0.005)
    assert 0.5 < expected <= 1.0


def test_permutation_found_when_estimates_swapped():
    est, ref, mix = two_speakers(seconds=0.6)
    assert best_permutation(est[::-1], ref)[0] == (1, 0)
    straight = quiet_compute(est, ref, mix, 16000, pesq=False, stoi=False)
    swapped = quiet_compute(est[::-1], ref, mix, 16000, pesq=False, stoi=False)
    assert swapped["perm"] == (1, 0) and straight["perm"] == (0, 1)
    for key in ("SI-SNRi", "SDRi", "SDR"):
        assert swapped[key] == pytest.approx(straight[key], abs=1e-6)
    kept = quiet_compute(est[::-1], ref, mix, 16000, permute=False, pesq=False, stoi=False)
    assert kept["perm"] == (0, 1) and kept["SI-SNRi"] < 0 < straight["SI-SNRi"]


def test_all_metrics_on_clean_input():
    est, ref, mix = two_speakers(16000, 2.0)
    got = quiet_compute(est, ref, mix, 16000)
    assert got["PESQ"] == pytest.approx(np.mean([reference_pesq(16000, r, e, "wb") for r, e in zip(ref, est)]),
                                        abs=0.02)
    assert got["STOI"] == pytest.approx(np.mean([reference_stoi(r, e, 16000) for r, e in zip(ref, est)]),
                                        abs=0.005)


def test_lengths_trimmed_and_large_difference_reported():
    est, ref, mix = two_speakers(seconds=0.6)
    longer = np.concatenate([est, np.zeros((2, 5), np.float32)], axis=1)
    base = quiet_compute(est, ref, mix, 16000, pesq=False, stoi=False)  # a few samples: silent trim
    assert quiet_compute(longer, ref, mix, 16000, pesq=False, stoi=False)["SI-SNR"] == pytest.approx(base["SI-SNR"])
    with pytest.warns(MetricWarning, match="trimmed"):
        compute_metrics(est[:, :9000], ref, mix, 16000, pesq=False, stoi=False)


def test_align_resamples_estimates_to_reference_rate():
    _, ref, mix = two_speakers(16000, 1.0)
    est8, _, _ = two_speakers(8000, 1.0)
    r, e, m, rate, notes = align_signals([(ref[0], 16000), (ref[1], 16000)],
                                         [(est8[0], 8000), (est8[1][:-3], 8000)], (mix, 16000))
    assert rate == 16000 and r.shape == e.shape and m.shape == (r.shape[1],)
    assert r.shape[1] >= 16000 - 8  # a few samples trimmed, not more
    assert any("resampled from 8000 Hz" in n for n in notes)
    assert not any("trimmed" in n for n in notes)
    assert si_snr(e, r).mean() > 10  # resampled estimates still line up with the references
