"""Separate every mixture of a folder (course layout) and write `save_dir/s1/<name>.wav`, `save_dir/s2/...`.

`run_directory` is the library entry; `main(cfg)` is the body of the `inference.py` script (config in,
exit code out: 0 all separated, 1 some files failed, 2 unusable arguments).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avss.data.custom_dir import MixEntry, scan_custom_dir
from avss.data.enrollment import load_enrollment
from avss.data.mouths import load_mouths
from avss.inference.chunked import check_settings, separate_array
from avss.io.audio import load_audio, save_audio
from avss.io.errors import InputError
from avss.utils.cli import err as _err, load_checkpoint, resolve_path, run_settings

USAGE = ("usage: python inference.py data_dir=DIR save_dir=OUT [checkpoint=PATH] [device=cpu|cuda] "
         "[chunk_seconds=8] [overlap_seconds=1] [refinement=none]")


@dataclass
class Report:
    """Outcome of `run_directory`: mixture paths separated, and (mixture path, reason) for each failure."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    save_dir: str = ""
    tracks: list[str] = field(default_factory=list)  # output sub-folders, e.g. ["s1", "s2"]


CUES = {  # per-speaker cue -> (MixEntry attribute, folder, file pattern, what the user can do instead)
    "mouth": ("mouths", "mouths", "<ID>.npz", "use an audio-only checkpoint"),
    "enrolment": ("enrollments", "enrollment", "<ID>.wav (an utterance of that speaker alone) or <ID>.npy", ""),
}


def _cue_paths(entry: MixEntry, data_dir: Path, cue: str) -> list[Path]:
    """The cue files of the mixture's two speakers (s1 = first ID in the name), or InputError naming what is missing."""
    attribute, folder, pattern, alternative = CUES[cue]
    otherwise = f", or {alternative}" if alternative else ""
    if entry.speakers is None:
        raise InputError(entry.mix, f"cannot tell the two speaker IDs from the file name, so no {cue} files match",
                         f"name it <ID1>_<ID2> with {data_dir / folder}/{pattern} for both{otherwise}")
    paths = getattr(entry, attribute)
    missing = [f"{data_dir / folder / spk}.*" if cue == "enrolment" else str(data_dir / folder / f"{spk}.npz")
               for spk, path in zip(entry.speakers, paths) if path is None]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise InputError(entry.mix, f"missing {cue} file{plural} {' and '.join(missing)}",
                         f"add {'them' if plural else 'it'} ({pattern}){otherwise}")
    return list(paths)


def _write_outputs(outputs: np.ndarray, rate: int, save_dir: Path, tracks: list[str], name: str) -> None:
    """Write all tracks or none: each goes to a hidden temporary file first, then all are renamed."""
    temps, finals = [], []
    try:
        for track, audio in zip(tracks, outputs):
            final = save_dir / track / f"{name}.wav"
            temp = final.with_name(f".{name}.partial.wav")
            temps.append(temp)
            save_audio(temp, audio, rate)
            finals.append(final)
        for temp, final in zip(temps, finals):
            os.replace(temp, final)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def _enrollment(model, path: Path, rate: int) -> np.ndarray:
    """An enrolment waveform at `rate`, or a voiceprint that must have the model's size (InputError otherwise)."""
    item = load_enrollment(path, rate)
    dim = int(getattr(model, "voiceprint_dim", 0))
    if Path(path).suffix.lower() == ".npy" and item.shape[0] != dim:
        raise InputError(path, f"voiceprint has {item.shape[0]} values; {type(model).__name__} needs {dim}",
                         "make it with this model's speaker encoder, or give an enrolment .wav instead")
    return item


def separate_entry(model, entry: MixEntry, data_dir: Path, **kw) -> tuple[np.ndarray, int]:
    """Separate one mixture of a folder: ([n_out, L] at the file's rate, rate). Raises InputError for bad inputs."""
    mouth_paths = _cue_paths(entry, data_dir, "mouth") if model.needs_visual else None
    enrolled = "enrollment" in getattr(model, "extra_inputs", ())
    enrollment_paths = _cue_paths(entry, data_dir, "enrolment") if enrolled else None
    channels = int(getattr(model, "in_channels", 1))
    audio, rate = load_audio(entry.mix, mono=channels == 1)
    if channels > 1 and audio.shape[0] != channels:
        raise InputError(entry.mix, f"has {audio.shape[0]} audio channel(s); {type(model).__name__} needs {channels}",
                         f"give a {channels}-channel recording, or use a single-channel checkpoint")
    mouths = [load_mouths(p) for p in mouth_paths] if mouth_paths else None
    enrollment = [_enrollment(model, p, rate) for p in enrollment_paths] if enrollment_paths else None
    return separate_array(model, audio, rate, mouths=mouths, enrollment=enrollment, **kw), rate


def run_directory(model, data_dir, save_dir, device="cpu", chunk_seconds: float | None = 8.0,
                  overlap_seconds: float = 1.0, progress: bool = True, log=_err, **refinement) -> Report:
    """Separate every mixture under `data_dir` into `save_dir/s<k>/<mix stem>.wav` (16-bit, the mixture's rate
    and length). With an audio-visual model s1 is the speaker named first in the file name. Each unusable
    mixture is reported as one line through `log` and skipped (nothing is written for it). `refinement`: the
    test-time refinement keywords of `separate_array` (shifts, flip_sign, mixture_consistency, spectral_filter).

    Raises InputError when `data_dir` does not exist or holds no mixtures, ValueError for bad settings.
    """
    check_settings(chunk_seconds, overlap_seconds, **refinement)
    data_dir, save_dir = Path(data_dir), Path(save_dir)
    entries = scan_custom_dir(data_dir)
    extraction = model.needs_visual and getattr(model, "task", "separation") == "extraction"
    n_out = 2 if extraction else int(model.n_src)
    tracks = [f"s{k + 1}" for k in range(n_out)]
    report = Report(save_dir=str(save_dir), tracks=tracks)
    for entry in tqdm(entries, desc="separating", unit="mix", file=sys.stderr, disable=not progress,
                      dynamic_ncols=True):
        try:
            outputs, rate = separate_entry(model, entry, data_dir, chunk_seconds=chunk_seconds,
                                           overlap_seconds=overlap_seconds, device=device, **refinement)
        except InputError as error:
            log(error.one_line())
            reason = f"{error.reason} ({error.hint})" if error.hint else error.reason
            report.failed.append((str(entry.mix), reason))
            continue
        try:
            _write_outputs(outputs, rate, save_dir, tracks, entry.name)
        except OSError as error:
            reason = f"cannot write the separated files to {save_dir} ({error.strerror or error})"
            log(f"{entry.mix}: {reason}")
            report.failed.append((str(entry.mix), reason))
            continue
        report.done.append(str(entry.mix))
    return report


# --------------------------------------------------------------------------------------------- script body
def main(cfg) -> int:
    """`inference.py` body: load the checkpoint, separate `data_dir` into `save_dir`; return the exit code."""
    if not cfg.get("data_dir") or not cfg.get("save_dir") or not cfg.get("checkpoint"):
        _err(f"inference: data_dir, save_dir and checkpoint are required ({USAGE})")
        return 2
    data_dir, save_dir, checkpoint = (resolve_path(cfg[k]) for k in ("data_dir", "save_dir", "checkpoint"))
    if not data_dir.is_dir():
        _err(f"{data_dir}: data directory not found (pass data_dir=DIR holding audio/mix/<ID1>_<ID2>.wav)")
        return 2
    settings = run_settings(cfg, "inference")
    if settings is None:
        return 2
    device, options = settings

    model = load_checkpoint(checkpoint)
    if model is None:
        return 2
    kind = "audio-visual extraction" if model.needs_visual else "audio-only separation"
    print(f"loaded {type(model).__name__} ({kind}, {model.sample_rate} Hz) from {checkpoint}", flush=True)

    try:
        report = run_directory(model, data_dir, save_dir, device=device, progress=bool(cfg.get("progress", True)),
                               **options)
    except InputError as error:  # data_dir holds no mixtures
        _err(error.one_line())
        return 2
    folders = ", ".join(f"{t}/" for t in report.tracks)
    print(f"separated {len(report.done)} mixtures into {save_dir} ({folders})", flush=True)
    if report.failed:
        _err(f"{len(report.failed)} failed (see the messages above); nothing was written for them")
        return 1
    return 0
