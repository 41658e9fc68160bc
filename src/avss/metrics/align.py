"""Bring references, estimates and the mixture of one file to a common rate and length."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from avss.io.audio import resample

LENGTH_TOLERANCE = 0.01  # relative length difference above which trimming is reported


def length_note(label: str, length: int, ref_length: int, tolerance: float = LENGTH_TOLERANCE) -> str | None:
    """A note when `length` differs from `ref_length` by more than `tolerance` (relative), else None."""
    if ref_length <= 0 or abs(length - ref_length) <= tolerance * ref_length:
        return None
    change = (length - ref_length) / ref_length * 100
    return (f"{label} has {length} samples vs {ref_length} in the reference ({change:+.1f}%), "
            f"trimmed to the shorter")


def align_signals(refs: Sequence[tuple[np.ndarray, int]], ests: Sequence[tuple[np.ndarray, int]],
                  mix: tuple[np.ndarray, int], names: Sequence[str] | None = None,
                  tolerance: float = LENGTH_TOLERANCE) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, list[str]]:
    """Resample everything to the first reference's rate, then trim to the shortest signal.

    `refs`, `ests`: one (audio [L], rate) per source; `mix`: (audio [L], rate); `names` labels the sources
    in notes (default s1, s2, ...). Returns (ref [S, L], est [S, L], mix [L], rate, notes); notes
    describe resampling and length differences above `tolerance`, a few samples are trimmed silently.
    """
    if len(refs) != len(ests):
        raise ValueError(f"got {len(ests)} estimates for {len(refs)} references")
    names = list(names) if names is not None else [f"s{i + 1}" for i in range(len(refs))]
    rate = int(refs[0][1])
    notes: list[str] = []

    def to_rate(audio: np.ndarray, audio_rate: int, label: str) -> np.ndarray:
        if audio_rate == rate:
            return audio
        notes.append(f"{label} resampled from {audio_rate} Hz to the reference rate {rate} Hz")
        return resample(audio, audio_rate, rate)

    ref_list = [to_rate(a, r, f"reference {n}") for (a, r), n in zip(refs, names)]
    est_list = [to_rate(a, r, f"estimate {n}") for (a, r), n in zip(ests, names)]
    mix_audio = to_rate(mix[0], mix[1], "mixture")

    ref_length = min(len(a) for a in ref_list)
    labelled = [(f"reference {n}", a) for n, a in zip(names, ref_list)]
    labelled += [(f"estimate {n}", a) for n, a in zip(names, est_list)] + [("mixture", mix_audio)]
    for label, audio in labelled:
        note = length_note(label, len(audio), ref_length, tolerance)
        if note:
            notes.append(note)
    length = min(len(a) for _, a in labelled)
    ref = np.stack([a[:length] for a in ref_list])
    est = np.stack([a[:length] for a in est_list])
    return ref, est, mix_audio[:length], rate, notes
