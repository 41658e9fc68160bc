"""Audio-visual synchrony: put each separated voice on the face whose mouth moves with it.

For audio-only separation models the estimates come in an arbitrary order. We compare, frame by frame at 25 fps,

- each estimate's *loudness*: log RMS over the 40 ms of audio each video frame covers;
- each face's *mouth activity*: in the central 48x48 pixels of its 96x96 mouth crop, the sum of three z-scored
  measures: the grey-level spread (standard deviation: an open mouth shows dark cavity and bright teeth), the
  darkness (minus the mean grey level) and the motion (mean absolute difference to the previous frame);

both high-passed (minus their centred moving average over `HIGHPASS_SECONDS`, 0.4 s), which keeps the syllable-
rate ups and downs and removes slow trends every voice in the mixture shares (including what leaks into the other
estimate). The score of a (face, estimate) pair is the Pearson correlation of the two sequences. One audio-video
lag of up to `max_lag` frames (+-2, 80 ms) is allowed for the whole video: for each lag the best one-to-one
assignment is found with the Hungarian method (`scipy.optimize.linear_sum_assignment`), and the lag whose
assignment has the highest total correlation wins.

Calibration (GRID clips of `../shared/data/av/grid`, mouths from `avss.video.mouth_roi`): with each clip's clean
audio, 52 of the 55 pairs of clips are matched right (55 without the high-pass); on 40 random two-clip split
screens separated by the 750-step `convtasnet_small` checkpoint shipped then, the better of the two orders is
chosen in 36 of 40 (11 of the 11 where the separation gains > 1 dB SI-SNRi; 29 of 40 without the high-pass, whose
slow trends follow the leakage). Frame differences alone were clearly worse than the spread/darkness cues on these
clips.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from avss.data.mouths import MOUTH_FPS

MAX_LAG = 2  # frames of audio-video offset allowed (either way)
HIGHPASS_SECONDS = 0.4  # the moving average subtracted from both sequences (10 frames at 25 fps)
REGION = (slice(24, 72), slice(24, 72))  # rows, columns of the 96x96 crop where the lips are (centre 48x48)


@dataclass
class SyncResult:
    """`order[k]`: the estimate that belongs to face k; `corr[k][i]`: correlation of face k's mouth activity with
    estimate i's loudness at the chosen `lag` (frames; positive: the sound comes after the picture);
    `margin`: total correlation of the chosen assignment minus that of the next best one (0..~2; small means
    unsure); `frames`: how many frames were compared."""

    order: list[int]
    corr: np.ndarray
    lag: int
    margin: float
    frames: int

    def as_dict(self) -> dict:
        return {"method": "audio-visual synchrony (loudness vs mouth activity, Hungarian assignment)",
                "order": [int(i) for i in self.order], "lag_frames": int(self.lag), "margin": round(self.margin, 4),
                "frames": int(self.frames),
                "correlation": [[round(float(v), 4) for v in row] for row in self.corr],
                "correlation_rows": "faces left to right", "correlation_columns": "model estimates in model order"}


def highpass(x: np.ndarray, window: int) -> np.ndarray:
    """x minus its centred moving average over `window` frames (edges padded with the end values)."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x - x.mean() if x.size else x
    half = window // 2
    padded = np.pad(x, (half, window - 1 - half), mode="edge")
    average = np.convolve(padded, np.ones(window) / window, mode="valid")
    return x - average


def _zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    std = x.std()
    return (x - x.mean()) / std if std > 1e-9 else np.zeros_like(x)


def loudness(audio: np.ndarray, rate: int, num_frames: int | None = None, fps: int = MOUTH_FPS) -> np.ndarray:
    """log RMS of mono `audio` [L] over each video frame's span ([k/fps, (k+1)/fps)); [num_frames] (default: all
    frames the audio covers; frames past its end count as silence)."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    edges = np.round(np.arange((num_frames or int(np.ceil(audio.size * fps / rate))) + 1) * rate / fps).astype(int)
    power = np.concatenate([[0.0], np.cumsum(audio ** 2)])
    ends = np.minimum(edges, audio.size)
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    energy = (power[ends[1:]] - power[ends[:-1]]) / counts
    return np.log(np.sqrt(energy) + 1e-4)


def mouth_activity(mouths: np.ndarray) -> np.ndarray:
    """Per-frame mouth activity of uint8 [T, 96, 96] crops: z(spread) + z(darkness) + z(motion) in `REGION`."""
    mouths = np.asarray(mouths)
    size = mouths.shape[1]
    rows, cols = REGION if size == 96 else (slice(size // 4, 3 * size // 4), slice(size // 4, 3 * size // 4))
    region = mouths[:, rows, cols].astype(np.float32)
    spread = region.std(axis=(1, 2))
    darkness = -region.mean(axis=(1, 2))
    motion = np.abs(np.diff(region, axis=0)).mean(axis=(1, 2)) if len(region) > 1 else np.zeros(0)
    motion = np.concatenate([motion[:1] if motion.size else [0.0], motion])
    return _zscore(spread) + _zscore(darkness) + _zscore(motion)


def _pearson(x: np.ndarray, y: np.ndarray, lag: int) -> float:
    """Correlation of x[t] (picture) with y[t + lag] (sound) over the frames both cover."""
    if lag > 0:
        x, y = x[:-lag], y[lag:]
    elif lag < 0:
        x, y = x[-lag:], y[:lag]
    if x.size < 3:
        return 0.0
    return float(np.mean(_zscore(x) * _zscore(y)))


def sync_scores(estimates: np.ndarray, rate: int, mouths: list[np.ndarray], max_lag: int = MAX_LAG,
                fps: int = MOUTH_FPS) -> dict[int, np.ndarray]:
    """{lag: correlation matrix [faces, estimates]} for every lag in -max_lag..max_lag.

    `estimates`: [S, L] (or [S, C, L], averaged to mono) starting at the same time as the mouth frames."""
    estimates = np.asarray(estimates, dtype=np.float64)
    if estimates.ndim == 3:
        estimates = estimates.mean(axis=1)
    frames = min(min(len(m) for m in mouths), int(np.ceil(estimates.shape[-1] * fps / rate)))
    window = max(1, round(HIGHPASS_SECONDS * fps))
    sound = [highpass(loudness(e, rate, frames, fps), window) for e in estimates]
    picture = [highpass(mouth_activity(m[:frames]), window) for m in mouths]
    return {lag: np.array([[_pearson(p, s, lag) for s in sound] for p in picture])
            for lag in range(-max_lag, max_lag + 1)}


def assign_by_sync(estimates: np.ndarray, rate: int, mouths: list[np.ndarray], max_lag: int = MAX_LAG,
                   fps: int = MOUTH_FPS) -> SyncResult:
    """Match faces (`mouths`, one uint8 [T, 96, 96] per face) to estimates [S, L] one to one (needs S >= faces)."""
    from scipy.optimize import linear_sum_assignment

    if not mouths:
        raise ValueError("no mouth streams to match")
    if len(mouths) > len(estimates):
        raise ValueError(f"{len(mouths)} faces but only {len(estimates)} estimates")
    frames = min(min(len(m) for m in mouths), int(np.ceil(np.asarray(estimates).shape[-1] * fps / rate)))
    best = None
    for lag, corr in sync_scores(estimates, rate, mouths, max_lag, fps).items():
        rows, cols = linear_sum_assignment(corr, maximize=True)
        total = float(corr[rows, cols].sum())
        if best is None or total > best[0] + 1e-12 or (abs(total - best[0]) <= 1e-12 and abs(lag) < abs(best[1])):
            best = (total, lag, corr, list(cols[np.argsort(rows)]))
    total, lag, corr, order = best
    margin = 0.0
    if math.perm(corr.shape[1], corr.shape[0]) <= 5040:  # up to 7 speakers: compare with every other assignment
        totals = sorted((sum(corr[k, i] for k, i in enumerate(perm))
                         for perm in itertools.permutations(range(corr.shape[1]), corr.shape[0])), reverse=True)
        margin = float(totals[0] - totals[1]) if len(totals) > 1 else 0.0
    return SyncResult([int(i) for i in order], corr, int(lag), margin, int(frames))
