"""Synthetic mouth-ROI video for corpora that have no lip recordings.

SYNTHETIC, NOT REAL LIPS: a drawn mouth (dark opening inside a lip ring on a skin-toned patch) whose opening
follows the speech envelope of its own source, with a random audio-video lag, per-clip appearance and
per-frame jitter. It lets audio-visual models be trained and tested end to end; a model trained only on it
learns envelope-following cues, not lip reading.
"""
from __future__ import annotations

import numpy as np

FPS = 25
SIZE = 96


def frame_envelope(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """Per-video-frame RMS in dB, [n_frames]."""
    hop = sample_rate / FPS
    env = np.empty(n_frames, dtype=np.float32)
    for i in range(n_frames):
        seg = audio[int(i * hop):int((i + 1) * hop)]
        env[i] = np.sqrt(np.mean(seg * seg)) if seg.size else 0.0
    return 20 * np.log10(env + 1e-6)


def envelope_to_opening(env_db: np.ndarray, rng: np.random.Generator, lag_frames: int) -> np.ndarray:
    """Map dB envelope to mouth opening in [0, 1]: 35 dB below the clip's peak is closed; smooth, lag, jitter."""
    top = np.percentile(env_db, 98) if env_db.size else 0.0
    opening = np.clip((env_db - (top - 35.0)) / 35.0, 0.0, 1.0)
    if opening.size >= 3:  # lips move smoothly; a 3-frame moving average
        opening = np.convolve(np.pad(opening, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    if lag_frames > 0:
        opening = np.concatenate([np.full(lag_frames, opening[0]), opening[:-lag_frames]])
    elif lag_frames < 0:
        opening = np.concatenate([opening[-lag_frames:], np.full(-lag_frames, opening[-1])])
    return np.clip(opening + rng.normal(0.0, 0.05, opening.shape), 0.0, 1.0)


def render_mouths(opening: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw [T, 96, 96] uint8 grayscale mouth frames for openings in [0, 1]."""
    t = opening.shape[0]
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    skin = rng.uniform(110, 175)
    lip = skin - rng.uniform(25, 55)
    cavity = rng.uniform(15, 50)
    half_width = rng.uniform(18, 28)
    cx = SIZE / 2 + rng.uniform(-5, 5) + rng.normal(0, 0.7, (t, 1, 1))
    cy = SIZE / 2 + rng.uniform(-5, 5) + rng.normal(0, 0.7, (t, 1, 1))
    op = opening[:, None, None].astype(np.float32)
    a = half_width * (1.0 - 0.15 * op)  # the mouth narrows a little as it opens
    b = 1.5 + op * rng.uniform(12, 18)
    shading = (yy - SIZE / 2) * rng.uniform(-0.4, 0.4)  # lighting gradient
    frames = np.broadcast_to(skin + shading, (t, SIZE, SIZE)).copy()
    outer = ((xx - cx) / (a + 5)) ** 2 + ((yy - cy) / (b + 5)) ** 2 <= 1.0
    inner = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
    frames[outer] = lip
    frames = np.where(inner, cavity, frames)
    frames += rng.normal(0, 3.0, frames.shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def synthetic_mouth_stream(audio: np.ndarray, sample_rate: int, rng: np.random.Generator,
                           max_lag_frames: int = 2) -> np.ndarray:
    """[T, 96, 96] uint8 frames at 25 fps covering `audio` (T = ceil(len * 25 / rate))."""
    n_frames = max(1, int(np.ceil(len(audio) * FPS / sample_rate)))
    lag = int(rng.integers(-max_lag_frames, max_lag_frames + 1)) if max_lag_frames else 0
    opening = envelope_to_opening(frame_envelope(audio, sample_rate, n_frames), rng, lag)
    return render_mouths(opening, rng)
