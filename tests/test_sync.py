"""Audio-visual synchrony: loudness, mouth activity and the face-to-voice assignment on generated signals."""
import numpy as np
import pytest

from avss.video.sync import assign_by_sync, highpass, loudness, mouth_activity
from test_faces import FPS, RATE, openings, voice


def drawn_mouths(opening: np.ndarray, lag: int = 0, seed: int = 0) -> np.ndarray:
    """uint8 [T, 96, 96] crops: skin with a dark ellipse whose height follows `opening`, `lag` frames late, plus
    a little noise."""
    import cv2

    rng = np.random.default_rng(seed)
    opening = np.concatenate([np.repeat(opening[:1], lag), opening])[:len(opening)] if lag else opening
    frames = []
    for o in opening:
        image = np.full((96, 96), 170, np.uint8)
        cv2.ellipse(image, (48, 48), (20, max(1, int(2 + 14 * o))), 0, 0, 360, 40, -1)
        noise = rng.normal(0, 3, image.shape)
        frames.append(np.clip(image + noise, 0, 255).astype(np.uint8))
    return np.stack(frames)


def test_loudness_and_activity_follow_their_signals():
    t = np.arange(RATE) / RATE
    audio = np.where(t < 0.5, 0.001, 0.3) * np.sin(2 * np.pi * 200 * t)  # quiet, then loud
    env = loudness(audio, RATE)
    assert env.shape == (25,) and env[:12].max() < env[13:].min() - 3
    assert loudness(audio, RATE, num_frames=30)[-1] == pytest.approx(np.log(1e-4))  # past the end: silence
    opening = np.r_[np.zeros(10), np.ones(10), np.zeros(10)]
    activity = mouth_activity(drawn_mouths(opening))
    assert activity.shape == (30,) and activity[12:19].mean() > activity[:9].mean() + 1
    assert np.allclose(highpass(np.full(9, 3.0), 5), 0) and np.allclose(highpass(np.arange(9.0), 3)[1:-1], 0)


@pytest.mark.parametrize("model_order", [[0, 1], [1, 0]])
def test_assigns_each_voice_to_its_mouth(model_order):
    seconds = 2.4
    voices = [voice(seconds, 110.0, 2.5, 0.0, seed=1), voice(seconds, 210.0, 4.5, 1.0, seed=2)]
    frames = round(seconds * FPS)
    mouths = [drawn_mouths(openings(v, frames), lag=1, seed=i) for i, v in enumerate(voices)]
    estimates = np.stack([voices[i] for i in model_order])
    result = assign_by_sync(estimates, RATE, mouths)
    assert [model_order[i] for i in result.order] == [0, 1]  # face k gets voice k, whatever the model's order
    assert result.corr.shape == (2, 2) and result.frames == frames
    assert result.lag == -1  # the mouths move one frame after the sound
    right = result.corr[0, model_order.index(0)] + result.corr[1, model_order.index(1)]
    assert right > 1.0 and result.margin > 0.5
    info = result.as_dict()
    assert info["order"] == result.order and len(info["correlation"]) == 2

    # three faces, three voices (a third rhythm), random model order
    third = voice(seconds, 160.0, 3.3, 2.0, seed=3)
    mouths.append(drawn_mouths(openings(third, frames), seed=5))
    shuffle = [2, 0, 1]
    estimates = np.stack([(voices + [third])[i] for i in shuffle])
    result = assign_by_sync(estimates, RATE, mouths)
    assert [shuffle[i] for i in result.order] == [0, 1, 2]


def test_assignment_needs_enough_estimates():
    mouths = [drawn_mouths(np.zeros(10))] * 3
    with pytest.raises(ValueError, match="3 faces but only 2 estimates"):
        assign_by_sync(np.zeros((2, RATE)), RATE, mouths)
    with pytest.raises(ValueError, match="no mouth streams"):
        assign_by_sync(np.zeros((2, RATE)), RATE, [])
