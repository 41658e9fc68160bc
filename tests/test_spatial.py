import numpy as np
import pytest
import torch

from avss.data.dynamic_mix import DynamicMixDataset
from avss.data.spatial import SPEED_OF_SOUND, mic_positions, render_images, two_mic_images

SR = 16000


def delay_samples(a: np.ndarray, b: np.ndarray, upsample: int = 64) -> float:
    """How many samples `b` lags `a` (GCC-PHAT, interpolated `upsample` times)."""
    n = 2 * len(a)
    cross = np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n))
    cc = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n * upsample)
    lag = int(np.argmax(cc))
    lag = lag - n * upsample if lag > n * upsample // 2 else lag
    return lag / upsample


def test_time_difference_gain_and_alignment_follow_the_geometry():
    noise = np.random.default_rng(0).standard_normal((2, 8000))
    positions = np.array([[2.0, 0.0, 0.0], [0.0, 1.5, 0.0]])  # endfire (towards mic 1) and broadside
    images = render_images(noise, positions, mic_positions(0.07), SR)
    assert images.shape == (2, 2, 8000) and images.dtype == np.float32
    tdoa = 0.07 / SPEED_OF_SOUND * SR  # 3.27 samples: mic 1 hears the endfire source first
    assert delay_samples(images[0, 0], images[0, 1]) == pytest.approx(-tdoa, abs=0.1)
    assert delay_samples(images[1, 0], images[1, 1]) == pytest.approx(0.0, abs=0.1)
    for s, dist in enumerate((2.0 + 0.035, 1.5)):  # amplitude 1/d; the reference image is aligned to < 1 sample
        assert np.std(images[s, 0, 200:-200]) == pytest.approx(np.std(noise[s]) / dist, rel=0.05)
        assert -0.1 <= delay_samples(noise[s], images[s, 0]) < 1.1


def test_random_sources_come_from_different_directions():
    rng = np.random.default_rng(1)
    sources = rng.standard_normal((2, 4000)).astype(np.float32)
    for _ in range(10):
        images, pos = two_mic_images(sources, SR, rng, return_positions=True)
        assert images.shape == (2, 2, 4000) and np.isfinite(images).all()
        azimuth = np.degrees(np.arctan2(pos[:, 1], pos[:, 0]))
        dist = np.linalg.norm(pos, axis=1)
        assert np.all((azimuth >= 0) & (azimuth <= 180)) and abs(azimuth[0] - azimuth[1]) >= 15.0
        assert np.all((dist >= 0.5) & (dist <= 2.5))
    with pytest.raises(ValueError, match=r"\[S, L\]"):
        two_mic_images(sources[0], SR, rng)


def make(tiny_corpus, tmp_path, **kw):
    corpora = [{"path": str(tiny_corpus), "speaker_regex": r"^(\d+)-", "n_val_speakers": 2,
                "cache_dir": str(tmp_path / "cache")}]
    return DynamicMixDataset(corpora, sample_rate=SR, segment=1.0, length=4, **kw)


def test_two_channel_items_with_enrollment(tiny_corpus, tmp_path):
    ds = make(tiny_corpus, tmp_path, split="val", channels=2, enrollment_seconds=0.5, mouths=True)
    item = ds[1]
    assert item["mix"].shape == (2, SR) and item["sources"].shape == (2, SR)
    assert item["enrollment"].shape == (2, SR // 2) and item["mouths"].shape[:2] == (2, 25)
    # the targets are the reference-microphone images: they add up to channel 0 of the mixture
    torch.testing.assert_close(item["mix"][0], item["sources"].sum(0), atol=1e-5, rtol=0)
    assert not torch.allclose(item["mix"][0], item["mix"][1], atol=1e-4)
    torch.testing.assert_close(ds[1]["mix"], item["mix"])  # validation items stay fixed
    rms = item["enrollment"].pow(2).mean(-1).sqrt()
    assert torch.all(rms > 0.01)
    with pytest.raises(ValueError, match="channels"):
        make(tiny_corpus, tmp_path, channels=3)


def test_enrollment_is_another_utterance_or_another_part(tiny_corpus, tmp_path):
    ds = make(tiny_corpus, tmp_path, enrollment_seconds=0.25)
    rng = np.random.default_rng(0)
    n = ds.enrollment_len
    a, b = np.linspace(1, 2, 8000, dtype=np.float32), np.linspace(5, 6, 8000, dtype=np.float32)
    out = ds._enrollment([a, b], 0, (0, 8000), rng)  # the mixture used utterance a: enrol from b
    assert out.shape == (n,) and out.max() / out.min() < 1.2
    ramp = np.linspace(1, 100, 20000, dtype=np.float32)
    ratio_after_span = ramp[10000 + n - 1] / ramp[10000]
    for _ in range(5):  # single utterance, mixture crop = its first half: enrol from the second half
        out = ds._enrollment([ramp], 0, (0, 10000), rng)
        assert out.max() / out.min() <= ratio_after_span + 1e-4
    short = ds._enrollment([ramp[:1000]], 0, (0, 1000), rng)  # shorter than Le: repeated, no silence
    assert short.shape == (n,) and np.all(np.abs(short) > 0)
