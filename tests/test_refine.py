"""Test-time refinement: shifted / sign-flipped passes averaged after alignment, and mixture consistency."""
import numpy as np
import pytest
import torch

from avss.inference.chunked import separate_array
from avss.inference.refine import (average_passes, check_refinement, mixture_consistency, shift_offsets,
                                   spectral_filter)
from avss.models.base import Separator

SR = 16000


def tones(n, rate=SR):
    t = np.arange(n) / rate
    low = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    high = (0.2 * np.sin(2 * np.pi * 3100 * t + 1.0)).astype(np.float32)
    return low, high


class MessySplitter(Separator):
    """Separates low and high bands exactly, but returns them in a random order, each with a random polarity
    and gain, and counts its calls and the delays it was given (leading zeros)."""

    def __init__(self, hop: int = 20, seed: int = 0):
        super().__init__()
        self.sample_rate, self.n_src, self.hop = SR, 2, hop
        self.rng = np.random.default_rng(seed)
        self.calls, self.delays = 0, []

    @property
    def frame_hop(self) -> int:
        return self.hop

    def forward(self, mix, mouths=None):
        self.calls += 1
        self.delays.append(int((mix[0] != 0).nonzero()[0]))
        spec = torch.fft.rfft(mix, dim=-1)
        freqs = torch.fft.rfftfreq(mix.shape[-1], 1 / SR)
        low = torch.fft.irfft(spec * (freqs < 1000), n=mix.shape[-1], dim=-1)
        tracks = [low, mix - low]
        if self.rng.random() < 0.5:
            tracks = tracks[::-1]
        gains = self.rng.choice([-1.0, 1.0], 2) * self.rng.uniform(0.3, 3.0, 2)
        return torch.stack([float(g) * t for g, t in zip(gains, tracks)], dim=1)


def test_shift_offsets_spread_over_one_hop():
    assert shift_offsets(20, 1) == [0]
    assert shift_offsets(20, 2) == [0, 10]
    assert shift_offsets(20, 4) == [0, 5, 10, 15]
    assert shift_offsets(2, 4) == [0, 1]  # no more distinct delays than samples in the hop


def test_average_passes_undoes_order_and_polarity():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 500)).astype(np.float32)
    passes = [np.stack([a, b]), np.stack([b, -a]), np.stack([-a, -b])]
    np.testing.assert_allclose(average_passes(passes), np.stack([a, b]), atol=1e-6)
    fixed = average_passes([np.stack([a, b]), np.stack([-a, b])], reorder=False)  # polarity still matched
    np.testing.assert_allclose(fixed, np.stack([a, b]), atol=1e-6)


def test_mixture_consistency_restores_gains_and_sums_to_the_mixture():
    low, high = tones(4000)
    mix = low + high
    rng = np.random.default_rng(1)
    np.testing.assert_allclose(mixture_consistency(np.stack([-2.5 * low, 0.4 * high]), mix),
                               np.stack([low, high]), atol=1e-5)
    noisy = np.stack([low, high]) + 0.05 * rng.standard_normal((2, 4000)).astype(np.float32)
    out = mixture_consistency(noisy, mix)
    np.testing.assert_allclose(out.sum(0), mix, atol=1e-5)
    assert np.abs(out - np.stack([low, high])).mean() < np.abs(noisy - np.stack([low, high])).mean()


def test_separate_array_runs_every_pass_and_returns_clean_tracks():
    low, high = tones(SR)
    model = MessySplitter(hop=20)
    out = separate_array(model, low + high, SR, chunk_seconds=0.5, overlap_seconds=0.1, shifts=2, flip_sign=True,
                         mixture_consistency=True)
    chunks = 3  # 1 s in 0.5 s chunks overlapping by 0.1 s
    assert model.calls == chunks * 4 and sorted(set(model.delays)) == [0, 10]
    if np.dot(out[0], low) < np.dot(out[1], low):
        out = out[::-1]
    for track, ref in zip(out, (low, high)):  # right order, polarity and level across all chunks
        assert np.abs(track - ref)[200:-200].max() < 0.02 * np.abs(ref).max()


def test_plain_settings_run_the_model_once_per_chunk():
    low, high = tones(SR // 2)
    model = MessySplitter()
    out = separate_array(model, low + high, SR, chunk_seconds=None, shifts=1, flip_sign=False,
                         mixture_consistency=False, spectral_filter=0.0)
    assert model.calls == 1
    assert min(np.abs(np.abs(out).max(1) - np.abs(low).max()).min(), 1.0) > 0.05  # the model's random gains kept


@pytest.mark.parametrize("settings,match", [({"shifts": 0}, "shifts"), ({"shifts": 1.5}, "shifts"),
                                            ({"flip_sign": "yes"}, "flip_sign"),
                                            ({"mixture_consistency": None}, "mixture_consistency"),
                                            ({"spectral_filter": 1.5}, "spectral_filter"),
                                            ({"spectral_filter": True}, "spectral_filter"),
                                            ({"spectral_filter": "on"}, "spectral_filter")])
def test_bad_refinement_settings_raise(settings, match):
    with pytest.raises(ValueError, match=match):
        check_refinement(**settings)
    with pytest.raises(ValueError, match=match):
        separate_array(MessySplitter(), np.ones(1000, np.float32), SR, **settings)


def leaky(low, high, leak=0.3):
    """Each tone's track with `leak` of the other tone in it; the two tracks still sum to the mixture."""
    return np.stack([(1 - leak) * low + leak * high, (1 - leak) * high + leak * low])


def test_spectral_filter_removes_what_leaked_between_distinct_spectra():
    low, high = tones(SR)
    clean = np.stack([low, high])
    est = leaky(low, high)
    error = lambda tracks: np.abs(tracks - clean)[:, 2000:-2000].max()  # noqa: E731
    filtered = spectral_filter(est, low + high, SR, weight=1.0)
    assert error(filtered) < 0.15 * error(est)  # power 4: a 0.3 / 0.7 leak keeps 0.3^4 / (0.3^4 + 0.7^4) = 3 %
    np.testing.assert_allclose(filtered.sum(0), low + high, atol=1e-4)  # the mask sums to one in every bin
    half = spectral_filter(est, low + high, SR, weight=0.5)
    np.testing.assert_allclose(half, 0.5 * filtered + 0.5 * est, atol=1e-5)
    assert spectral_filter(est, low + high, SR, weight=0.0) is est


def test_spectral_filter_keeps_the_length_of_inputs_shorter_than_its_window():
    low, high = tones(300)  # 19 ms, a seventh of the 128 ms window
    out = spectral_filter(leaky(low, high), low + high, SR)
    assert out.shape == (2, 300) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(0), low + high, atol=1e-4)


def test_separate_array_filters_by_default_and_not_when_switched_off():
    low, high = tones(SR)

    class LeakySplitter(MessySplitter):
        def forward(self, mix, mouths=None):
            spec = torch.fft.rfft(mix, dim=-1)
            low = torch.fft.irfft(spec * (torch.fft.rfftfreq(mix.shape[-1], 1 / SR) < 1000), n=mix.shape[-1])
            return torch.stack([0.7 * low + 0.3 * (mix - low), 0.7 * (mix - low) + 0.3 * low], dim=1)

    clean = np.stack([low, high])
    error = lambda tracks: np.abs(tracks - clean)[:, 2000:-2000].max()  # noqa: E731
    plain = separate_array(LeakySplitter(), low + high, SR, chunk_seconds=None, shifts=1, flip_sign=False,
                           spectral_filter=0.0)
    default = separate_array(LeakySplitter(), low + high, SR, chunk_seconds=None, shifts=1, flip_sign=False)
    assert 0.3 * error(plain) < error(default) < 0.45 * error(plain)  # 0.7 x 3 % + 0.3 x 30 %: about 0.38
