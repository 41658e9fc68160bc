"""Audio file I/O: decode anything soundfile or PyAV reads, downmix, resample with soxr."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from avss.io.errors import InputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif")


def _decode_with_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise InputError(path, "contains no audio stream", "pass an audio file or a video with sound")
        stream = container.streams.audio[0]
        chunks = []
        for frame in container.decode(stream):
            arr = frame.to_ndarray()
            if arr.dtype.kind in "iu":
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
            if frame.format.is_planar:
                chunks.append(arr.reshape(len(frame.layout.channels), -1))
            else:
                chunks.append(arr.reshape(-1, len(frame.layout.channels)).T)
        if not chunks:
            return np.zeros((1, 0), np.float32), stream.rate
        return np.concatenate(chunks, axis=1).astype(np.float32), stream.rate


def load_audio(path, sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read `path` as float32.

    Returns (audio, rate): audio is [L] when `mono`, else [C, L]. With `sample_rate`, audio is resampled
    to it and `rate` equals it. Raises InputError (one clear line) for missing, empty or undecodable files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found", "check the path")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)", "re-export or remove it")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = data.T
    except Exception as sf_error:  # soundfile lacks some codecs (aac, m4a, some mp3): fall back to PyAV
        try:
            audio, rate = _decode_with_av(path)
        except InputError:
            raise
        except Exception:
            raise InputError(path, f"cannot decode audio ({str(sf_error).splitlines()[0]})",
                             "convert it to wav/flac, or remove it") from None
    if audio.shape[-1] == 0:
        raise InputError(path, "audio has no samples", "re-export or remove it")
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)
    if mono:
        audio = to_mono(audio)
    if sample_rate is not None and rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """[C, L] or [L] -> [L] by averaging channels."""
    return audio if audio.ndim == 1 else audio.mean(axis=0)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample [L] or [C, L] along time with soxr (high quality)."""
    if rate_in == rate_out:
        return audio
    if audio.ndim == 1:
        return soxr.resample(audio, rate_in, rate_out, quality="HQ").astype(np.float32)
    return soxr.resample(audio.T, rate_in, rate_out, quality="HQ").T.astype(np.float32)


def save_audio(path, audio, sample_rate: int) -> None:
    """Write [L] or [C, L] float audio as 16-bit PCM wav, peak-limited to avoid wrap-around."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0:
        audio = audio / peak
    sf.write(str(path), audio.T if audio.ndim == 2 else audio, sample_rate, subtype="PCM_16")
