"""Mouth-ROI frames: read `<ID>.npz` files and line them up with audio.

A mouth file is an npz archive whose key `data` holds the frames of one speaker at 25 fps, as uint8
[T, 96, 96] grayscale. `load_mouths` also accepts, and converts:

- integer arrays with values in 0..255 and float arrays in 0..1 or 0..255 (rounded to uint8);
- [T, H, W, 3] RGB frames (ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B) and [T, H, W, 1];
- frames of another size, resized to 96x96 with OpenCV (area interpolation when shrinking, bilinear when
  enlarging; the aspect ratio is not kept, so crop non-square ROIs yourself beforehand if that matters).

Anything else raises `InputError` with a one-line reason.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avss.io.errors import InputError, first_line

MOUTH_FPS = 25
MOUTH_SIZE = 96
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_NPZ_HINT = "save frames with np.savez(path, data=frames), frames uint8 [T, 96, 96]"


def load_mouths(path, size: int = MOUTH_SIZE) -> np.ndarray:
    """Read one speaker's mouth frames from `path` (npz, key `data`) as uint8 [T, size, size]."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mouth file not found", "check the mouths folder")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:
        raise InputError(path, f"cannot read mouth file ({first_line(err)})", _NPZ_HINT) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(path, "is a plain .npy array, not an npz archive with key 'data'", _NPZ_HINT)
    with archive:
        if "data" not in archive.files:
            keys = ", ".join(archive.files) or "none"
            raise InputError(path, f"mouth npz has no 'data' array (keys: {keys})", _NPZ_HINT)
        try:
            frames = archive["data"]
        except Exception as err:
            raise InputError(path, f"cannot read mouth array 'data' ({first_line(err)})", _NPZ_HINT) from None
    return _normalise(path, frames, size)



def _normalise(path: Path, frames: np.ndarray, size: int) -> np.ndarray:
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    rgb = frames.ndim == 4 and frames.shape[-1] == 3
    if not (frames.ndim == 3 or rgb):
        raise InputError(path, f"mouth array has shape {list(frames.shape)}; expected [T, H, W] or [T, H, W, 3]",
                         _NPZ_HINT)
    if frames.shape[0] == 0:
        raise InputError(path, "mouth array has no frames", _NPZ_HINT)
    if frames.shape[1] == 0 or frames.shape[2] == 0:
        raise InputError(path, f"mouth array has empty frames (shape {list(frames.shape)})", _NPZ_HINT)

    frames = _to_uint8(path, frames)
    if rgb:
        gray = frames.astype(np.float32) @ _LUMA
        frames = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if frames.shape[1:] != (size, size):
        frames = _resize(frames, size)
    return np.ascontiguousarray(frames, dtype=np.uint8)


def _to_uint8(path: Path, frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames
    kind = frames.dtype.kind
    if kind in "iu":
        lo, hi = int(frames.min()), int(frames.max())
        if lo < 0 or hi > 255:
            raise InputError(path, f"mouth array ({frames.dtype}) has values {lo}..{hi}, outside 0..255", _NPZ_HINT)
        return frames.astype(np.uint8)
    if kind == "f":
        if not np.all(np.isfinite(frames)):
            raise InputError(path, "mouth array contains NaN or infinite values", _NPZ_HINT)
        lo, hi = float(frames.min()), float(frames.max())
        if lo < 0.0 or hi > 255.0:
            raise InputError(path, f"mouth array ({frames.dtype}) has values {lo:g}..{hi:g}, outside 0..255",
                             _NPZ_HINT)
        scale = 255.0 if hi <= 1.0 else 1.0  # floats in [0, 1] are image intensities, not 0/1 grey levels
        return np.clip(np.rint(frames.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    raise InputError(path, f"mouth array has unsupported dtype {frames.dtype}", _NPZ_HINT)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    import cv2

    shrinking = frames.shape[1] >= size and frames.shape[2] >= size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = np.empty((frames.shape[0], size, size), dtype=np.uint8)
    for t, frame in enumerate(frames):
        out[t] = cv2.resize(np.ascontiguousarray(frame), (size, size), interpolation=interp)
    return out


def num_frames(n_samples: int, sample_rate: int, fps: int = MOUTH_FPS) -> int:
    """Video frames covering `n_samples` of audio: ceil(n_samples * fps / sample_rate), at least 1."""
    return max(1, -(-int(n_samples) * fps // int(sample_rate)))


def match_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Trim [T, ...] frames to `n`, or pad them to `n` by repeating the last frame."""
    t = frames.shape[0]
    if t == n:
        return frames
    if t > n:
        return frames[:n]
    if t == 0:
        raise ValueError("cannot pad an empty frame sequence")
    return np.concatenate([frames, np.repeat(frames[-1:], n - t, axis=0)], axis=0)
