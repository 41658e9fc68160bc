"""separate_array: lengths and rates, level handling, chunk stitching, speaker order across chunks, mouths."""
import numpy as np
import pytest
import torch

from avss.inference.chunked import MOUTH_FPS, _chunk_plan, separate_array
from avss.inference.refine import NO_REFINEMENT, match_tracks
from avss.models.av_convtasnet import AVConvTasNet
from avss.models.base import Separator
from avss.models.convtasnet import ConvTasNet

SR = 16000
PLAIN = NO_REFINEMENT  # one model pass per chunk, as returned


def tiny_convtasnet(norm="gLN", sample_rate=SR, seed=0):
    torch.manual_seed(seed)
    return ConvTasNet(n_src=2, sample_rate=sample_rate, n_filters=16, kernel_size=16, bottleneck=8, hidden=16,
                      skip=8, blocks=2, repeats=1, norm=norm).eval()


def si_snr_db(est, ref):
    est, ref = est - est.mean(), ref - ref.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return 10 * np.log10((target @ target) / ((est - target) @ (est - target) + 1e-12))


def voice(n, f0, rate=SR, seed=0, am=3.0):
    """A harmonic tone with a slow amplitude envelope (a crude stand-in for speech)."""
    t = np.arange(n) / rate
    env = 0.55 + 0.45 * np.sin(2 * np.pi * am * t + seed)
    return (0.2 * env * sum(np.sin(2 * np.pi * k * f0 * t + k * seed) / k for k in range(1, 4))).astype(np.float32)


class SignTracks(Separator):
    """Identity-like 'separator': returns [mix, -mix]; records every chunk length it is given."""

    def __init__(self, sample_rate: int = SR):
        super().__init__()
        self.sample_rate, self.n_src = sample_rate, 2
        self.lengths, self.levels = [], []

    def forward(self, mix, mouths=None):
        self.lengths.append(mix.shape[-1])
        self.levels.append(float(mix.pow(2).mean().sqrt()))
        return torch.stack([mix, -mix], dim=1)


class BandSplitShuffled(Separator):
    """Separates a low-band and a high-band source with an FFT mask, then returns them in a random order."""

    def __init__(self, cutoff: float = 1000.0, seed: int = 0):
        super().__init__()
        self.sample_rate, self.n_src, self.cutoff = SR, 2, cutoff
        self.rng = np.random.default_rng(seed)
        self.swaps = 0

    def forward(self, mix, mouths=None):
        spec = torch.fft.rfft(mix, dim=-1)
        freqs = torch.fft.rfftfreq(mix.shape[-1], 1 / self.sample_rate)
        low = torch.fft.irfft(spec * (freqs < self.cutoff), n=mix.shape[-1], dim=-1)
        high = mix - low
        if self.rng.random() < 0.5:
            self.swaps += 1
            return torch.stack([high, low], dim=1)
        return torch.stack([low, high], dim=1)


class MouthGain(Separator):
    """Fake extraction model: output = mix * (mouth frame brightness / 255), frame by frame (25 fps)."""

    needs_visual = True
    task = "extraction"

    def __init__(self, sample_rate: int = SR):
        super().__init__()
        self.sample_rate, self.n_src = sample_rate, 1

    def forward(self, mix, mouths=None):
        if mouths is None:
            raise ValueError("mouths needed")
        length = mix.shape[-1]
        per_frame = mouths.float().mean(dim=(-2, -1)) / 255.0  # [B, T]
        frame_of_sample = torch.arange(length) * MOUTH_FPS // self.sample_rate
        assert int(frame_of_sample[-1]) < per_frame.shape[1], "mouth frames do not cover the chunk"
        return (mix * per_frame[:, frame_of_sample]).unsqueeze(1)


# --------------------------------------------------------------------------------------------- lengths
@pytest.mark.parametrize("rate,shape", [(SR, (7919,)), (8000, (3001,)), (44100, (20001,)), (SR, (2, 9999)),
                                        (22050, (1, 5003)), (SR, (97,))])
def test_output_length_matches_input(rate, shape):
    model = tiny_convtasnet()
    mix = np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 0.1
    out = separate_array(model, mix, rate, chunk_seconds=0.2, overlap_seconds=0.05)
    assert out.shape == (2, shape[-1]) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.abs(out).max() > 0


def test_resampling_round_trip_keeps_the_signal():
    model = SignTracks()
    mix = voice(8000, 150, rate=8000)  # 1 s at 8 kHz: up to 16 kHz for the model, back to 8 kHz
    out = separate_array(model, mix, 8000, chunk_seconds=0.3, overlap_seconds=0.1)
    assert si_snr_db(out[0], mix) > 40 and si_snr_db(-out[1], mix) > 40


def test_separate_method_delegates():
    model = SignTracks()
    mix = voice(3000, 200)
    np.testing.assert_allclose(model.separate(mix, **PLAIN)[0], mix, atol=1e-5)


def test_empty_and_bad_settings_raise():
    model = SignTracks()
    with pytest.raises(ValueError, match="empty"):
        separate_array(model, np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match="overlap"):
        separate_array(model, np.ones(100, np.float32), SR, chunk_seconds=1.0, overlap_seconds=1.0)
    with pytest.raises(ValueError, match="chunk_seconds"):
        separate_array(model, np.ones(100, np.float32), SR, chunk_seconds=0)


# --------------------------------------------------------------------------------------------- level
@pytest.mark.parametrize("level", [1e-4, 0.05, 0.9])
def test_level_is_normalised_for_the_model_and_restored(level):
    model = SignTracks()
    mix = voice(SR // 2, 180) * (level / 0.2)
    out = separate_array(model, mix, SR, chunk_seconds=0.2, overlap_seconds=0.05, **PLAIN)
    np.testing.assert_allclose(out[0], mix, rtol=1e-4, atol=1e-6 * level)
    np.testing.assert_allclose(out[1], -mix, rtol=1e-4, atol=1e-6 * level)
    whole_rms = np.sqrt(np.mean(np.square(mix / np.sqrt(np.mean(mix ** 2)) * 0.1)))
    assert np.allclose(whole_rms, 0.1)
    assert all(0.03 < lvl < 0.3 for lvl in model.levels), model.levels  # about -20 dBFS per chunk


def test_silent_clipped_and_nan_inputs_stay_finite():
    model = tiny_convtasnet()
    silent = separate_array(model, np.zeros(5000, np.float32), SR)
    assert silent.shape == (2, 5000) and not np.any(silent)
    clipped = np.clip(voice(5000, 200) * 50, -1, 1)
    out = separate_array(model, clipped, SR, chunk_seconds=0.15, overlap_seconds=0.05)
    assert np.all(np.isfinite(out)) and np.abs(out).max() > 0
    broken = voice(5000, 200)
    broken[100:200] = np.nan
    broken[300] = np.inf
    assert np.all(np.isfinite(separate_array(model, broken, SR)))
    tiny = np.zeros(3000, np.float32)
    tiny[10] = 1e-30  # denormal-level input counts as silence
    assert not np.any(separate_array(model, tiny, SR))


# --------------------------------------------------------------------------------------------- chunking
def test_memory_is_bounded_by_the_chunk():
    model = SignTracks()
    mix = voice(int(0.9 * SR), 200)
    out = separate_array(model, mix, SR, chunk_seconds=0.2, overlap_seconds=0.05, **PLAIN)
    assert len(model.lengths) >= 5 and max(model.lengths) <= int(0.2 * SR) + 1
    np.testing.assert_allclose(out[0], mix, rtol=1e-4, atol=1e-6)  # the cross-fade weights sum to one


def test_chunk_plan_covers_everything():
    for n, chunk, overlap, align in [(1000, 300, 50, 1), (1001, 300, 0, 1), (12345, 3200, 640, 640), (300, 300, 10, 1)]:
        plan = _chunk_plan(n, chunk, overlap, align)
        assert plan[0][0] == 0 and plan[-1][1] == n
        for (s0, e0), (s1, e1) in zip(plan, plan[1:]):
            assert s0 < s1 <= e0 - overlap and e0 <= e1  # consecutive chunks overlap by at least `overlap`
        assert all(s % align == 0 for s, _ in plan)


def test_chunked_matches_one_shot_for_a_local_model():
    model = tiny_convtasnet(norm="cLN")  # cLN + 2 blocks: a receptive field of ~100 samples, no global context
    mix = voice(int(0.9 * SR), 170) + voice(int(0.9 * SR), 410, seed=2)
    whole = separate_array(model, mix, SR, chunk_seconds=None, **PLAIN)
    chunked = separate_array(model, mix, SR, chunk_seconds=0.25, overlap_seconds=0.05, **PLAIN)
    plan = _chunk_plan(mix.size, int(0.25 * SR), int(0.05 * SR), 1)
    assert len(plan) >= 3
    keep = np.ones(mix.size, bool)
    for start, end in plan:  # skip a margin at each chunk border
        keep[max(0, start - 150):start + 150] = False
        keep[max(0, end - 150):end + 150] = False
    keep[:150] = keep[-150:] = True  # the file's own ends are the same in both
    scale = np.abs(whole).max()
    assert np.abs(chunked - whole)[:, keep].max() < 1e-4 * scale
    assert np.abs(chunked - whole).max() < 0.05 * scale  # borders: close too, thanks to the cross-fade


def test_match_tracks_reorders_and_restores_polarity():
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 400))
    prev = np.stack([a, b, c])
    perm, signs = match_tracks(prev, np.stack([c, -a, b]))
    assert list(perm) == [1, 2, 0] and list(signs) == [-1, 1, 1]
    perm, signs = match_tracks(prev, prev)
    assert list(perm) == [0, 1, 2] and list(signs) == [1, 1, 1]
    perm, signs = match_tracks(prev, np.stack([-a, c, b]), reorder=False)  # fixed order: polarity only
    assert list(perm) == [0, 1, 2] and signs[0] == -1
    perm, signs = match_tracks(np.zeros((2, 50)), rng.standard_normal((2, 50)))
    assert list(perm) == [0, 1] and list(signs) == [1, 1]


def test_speaker_order_is_consistent_across_chunks():
    n = int(0.9 * SR)
    low, high = voice(n, 140, seed=1, am=2.0), voice(n, 2600, seed=3, am=5.0)
    model = BandSplitShuffled(seed=4)
    out = separate_array(model, low + high, SR, chunk_seconds=0.1, overlap_seconds=0.03)
    assert model.swaps >= 3  # the fake model really did shuffle its outputs
    if si_snr_db(out[0], low) < si_snr_db(out[1], low):
        out = out[::-1]
    assert si_snr_db(out[0], low) > 20 and si_snr_db(out[1], high) > 20


# --------------------------------------------------------------------------------------------- extraction
def test_extraction_gives_one_output_per_mouth_stream_in_order():
    n = int(0.9 * SR)
    mix = voice(n, 200)
    frames = int(np.ceil(n * MOUTH_FPS / SR))
    ramp = np.linspace(40, 250, frames).astype(np.uint8)  # brightness changes frame by frame
    mouths = [np.broadcast_to(ramp[:, None, None], (frames, 96, 96)).copy(),
              np.full((frames - 2, 96, 96), 100, np.uint8)]  # a little shorter than the audio
    model = MouthGain()
    out = separate_array(model, mix, SR, mouths=mouths, chunk_seconds=0.2, overlap_seconds=0.05)
    assert out.shape == (2, n)
    frame_of = np.arange(n) * MOUTH_FPS // SR
    np.testing.assert_allclose(out[0], mix * ramp[frame_of] / 255.0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[1], mix * 100 / 255.0, rtol=1e-4, atol=1e-6)
    swapped = separate_array(model, mix, SR, mouths=mouths[::-1], chunk_seconds=0.2, overlap_seconds=0.05)
    np.testing.assert_allclose(swapped, out[::-1], rtol=1e-5, atol=1e-7)


def test_extraction_without_mouths_raises():
    with pytest.raises(ValueError, match="mouth"):
        separate_array(MouthGain(), voice(4000, 200), SR)


def test_real_av_model_runs_chunked():
    torch.manual_seed(0)
    model = AVConvTasNet(n_filters=16, kernel_size=16, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=1,
                         visual_dim=8, lip_frontend={"kind": "small", "width": 4}, fuse_at=0).eval()
    n = int(0.5 * SR) + 3
    mouths = [np.random.default_rng(k).integers(0, 255, (13, 96, 96), dtype=np.uint8) for k in range(2)]
    out = separate_array(model, voice(n, 200), SR, mouths=mouths, chunk_seconds=0.2, overlap_seconds=0.04)
    assert out.shape == (2, n) and np.all(np.isfinite(out))
    assert not np.allclose(out[0], out[1])
