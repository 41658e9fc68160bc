"""Enrolment cues for voiceprint models (LiMuSE): an utterance of the target speaker alone, or a ready voiceprint.

In a custom folder they live next to the mouths, one file per speaker ID:

    DIR/enrollment/<ID>.{wav,flac,mp3,ogg}   a few seconds of that speaker alone (any rate, mixed to mono)
    DIR/enrollment/<ID>.npy                  a precomputed voiceprint: float vector [D] (D = the model's voiceprint_dim)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avss.io.audio import load_audio
from avss.io.errors import InputError

ENROLLMENT_DIR = "enrollment"
ENROLLMENT_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".npy")
MIN_ENROLLMENT_SECONDS = 0.5


def load_enrollment(path, sample_rate: int) -> np.ndarray:
    """An enrolment waveform [Le] at `sample_rate`, or a voiceprint vector [D] from a `.npy` file.

    Raises InputError for unreadable files, voiceprints that are not a finite 1-D vector, and utterances
    shorter than MIN_ENROLLMENT_SECONDS.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            vector = np.load(path, allow_pickle=False)
        except Exception as err:
            raise InputError(path, f"cannot read voiceprint ({str(err).splitlines()[0]})",
                             "save it with np.save(path, vector), a float vector [D]") from None
        if vector.ndim != 1 or not np.issubdtype(vector.dtype, np.floating) or not np.all(np.isfinite(vector)):
            raise InputError(path, f"voiceprint must be a finite float vector [D], got {vector.dtype} "
                                   f"{list(vector.shape)}", "save one embedding per speaker")
        return vector.astype(np.float32)
    audio, _ = load_audio(path, sample_rate=sample_rate, mono=True)
    if audio.shape[-1] < MIN_ENROLLMENT_SECONDS * sample_rate:
        raise InputError(path, f"enrolment utterance is only {audio.shape[-1] / sample_rate:.2f} s long",
                         f"give at least {MIN_ENROLLMENT_SECONDS} s of the speaker alone (3 s or more is better)")
    return audio
