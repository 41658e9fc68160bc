"""Separate one whole recording with a `Separator`, in overlapping chunks so memory stays bounded.

`separate_array(model, mix, sample_rate)` takes audio at any rate, resamples it to the model's rate (soxr),
sets the mixture level to about -20 dBFS (the level the models were trained at), runs the model on
overlapping chunks under `torch.inference_mode`, cross-fades the chunks with a raised-cosine ramp over each
overlap, undoes the gain, resamples back and returns exactly as many samples as it was given.

Separation models (task "separation") return tracks in an arbitrary order per call; each chunk's tracks are
re-ordered (and negated where needed) to best match the previous chunk on their shared samples (correlation,
Hungarian assignment), so a speaker stays on one track across the file. Each chunk is refined at test time
(avss.inference.refine): several shifted / sign-flipped passes averaged, mixture consistency, then a spectral
filter (Wiener-like mask from the tracks' 128-ms STFT magnitudes). Extraction
models (task "extraction", needs_visual) run once per mouth stream; output k belongs to `mouths[k]`. Voiceprint
models (LiMuSE: `"enrollment" in model.extra_inputs`) also take one enrolment per target; each is turned into a
voiceprint once per file, not once per chunk.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from avss.data.mouths import MOUTH_FPS, load_mouths, match_frames, num_frames
from avss.inference.refine import (FLIP_SIGN, MIXTURE_CONSISTENCY, SHIFTS, SPECTRAL_FILTER, average_passes,
                                   check_refinement, match_tracks, mixture_consistency, shift_offsets)
from avss.inference.refine import spectral_filter as filter_tracks
from avss.io.audio import load_audio, resample, to_mono

TARGET_RMS = 10.0 ** (-20.0 / 20.0)  # -20 dBFS: the middle of the -25..-15 dBFS training range
SILENCE_RMS = 1e-6  # below this (-120 dBFS) the input is treated as silence: outputs are zeros
MIN_SECONDS = 0.1  # shorter inputs are zero-padded to this for the model, then trimmed


# --------------------------------------------------------------------------------------------- helpers
def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis to `n` samples."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n - audio.shape[-1])]
    return np.pad(audio, pad)


def _fade_in(n: int) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1 over n samples; `w` and `1 - w` sum to one (constant-gain cross-fade)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def _as_mouth_list(mouths) -> list[np.ndarray] | None:
    """Accept a list/tuple of per-speaker arrays, or one stacked array [S, T, ...] (uint8 [T, H, W]: one speaker)."""
    if mouths is None:
        return None
    if isinstance(mouths, torch.Tensor):
        mouths = mouths.detach().cpu().numpy()
    if isinstance(mouths, np.ndarray):
        mouths = [mouths] if (mouths.ndim == 3 and mouths.dtype == np.uint8) else list(mouths)
    out = []
    for k, m in enumerate(mouths):
        m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
        if m.ndim < 2 or m.shape[0] == 0:
            raise ValueError(f"mouths[{k}] has shape {list(m.shape)}; expected frames [T, 96, 96] with T >= 1")
        out.append(m)
    return out


def _chunk_plan(n: int, chunk: int, overlap: int, align: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk over n samples; starts are multiples of `align`; the last chunk ends at n."""
    if n <= chunk:
        return [(0, n)]
    hop = max(align, (chunk - overlap) // align * align)
    starts = list(range(0, n - chunk, hop))
    last = (n - chunk) // align * align
    if last > starts[-1]:
        starts.append(last)
    return [(s, s + chunk) for s in starts[:-1]] + [(starts[-1], n)]


def _to_training_level(audio: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(audio at TARGET_RMS as float32, the gain applied); gain None (audio unchanged) for silent/non-finite input."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if not math.isfinite(rms) or rms < SILENCE_RMS:
        return audio.astype(np.float32, copy=False), None
    gain = TARGET_RMS / rms
    return (audio * gain).astype(np.float32), gain


def _voiceprints(model, enrollment, sample_rate: int, device) -> torch.Tensor:
    """Per-target voiceprints [S, D] from enrolment waveforms [Le] at `sample_rate` or ready vectors [D]."""
    dim = int(model.voiceprint_dim)
    prints = []
    for k, item in enumerate(enrollment):
        item = np.asarray(item.detach().cpu() if isinstance(item, torch.Tensor) else item, dtype=np.float32)
        if item.ndim != 1 or item.size == 0:
            raise ValueError(f"enrollment[{k}] has shape {list(item.shape)}; expected a waveform [Le] or a "
                             f"voiceprint [{dim}]")
        if item.shape[0] != dim:  # a waveform: the model's speaker encoder turns it into a voiceprint
            audio, _ = _to_training_level(resample(item, sample_rate, int(model.sample_rate)))
            item = model.voiceprint(torch.from_numpy(audio).to(device)[None])[0]
        prints.append(torch.as_tensor(item, device=device))
    return torch.stack(prints)


class _ChunkRunner:
    """Runs the model on one chunk of model-rate audio; returns float32 [n_out, chunk length].

    `offsets`/`signs`: the delays and polarities of the passes that are averaged (`reorder`: their tracks may
    come in any order); `consistency`: make the tracks sum to the chunk; `filter_weight`: share of the
    spectrally filtered tracks in the output (0: off)."""

    def __init__(self, model, mouths, device, min_len: int, extra: dict | None = None,
                 offsets: tuple[int, ...] = (0,), signs: tuple[float, ...] = (1.0,), reorder: bool = True,
                 consistency: bool = False, filter_weight: float = 0.0):
        self.model, self.mouths, self.device, self.min_len = model, mouths, device, min_len
        self.extra = extra or {}  # per-target conditioning passed to every call, e.g. {"enrollment": [S, D]}
        self.rate = int(model.sample_rate)
        self.extraction = model.needs_visual and getattr(model, "task", "separation") == "extraction"
        self.offsets, self.signs, self.reorder, self.consistency = offsets, signs, reorder, consistency
        self.filter_weight = filter_weight

    def _mouth_slice(self, frames: np.ndarray, start: int, length: int) -> np.ndarray:
        first = start * MOUTH_FPS // self.rate
        count = num_frames(length, self.rate)
        piece = frames[first:first + count]
        if piece.shape[0] == 0:  # video shorter than the audio: hold the last frame
            piece = frames[-1:]
        return match_frames(piece, count)

    def _once(self, audio: torch.Tensor, start: int, length: int) -> np.ndarray:
        """One model call on audio [1, (C,) L'] -> float32 [n_out, L'] (checked to cover `length` samples)."""
        if not self.model.needs_visual:
            est = self.model(audio)[0]
        else:
            frames = torch.from_numpy(np.stack([self._mouth_slice(m, start, audio.shape[-1]) for m in self.mouths]))
            frames = frames.to(self.device)
            if self.extraction:  # one call per target speaker, batched: [S, L] + [S, T, 96, 96] -> [S, 1, L]
                est = self.model(audio.expand(len(self.mouths), *audio.shape[1:]), frames, **self.extra)[:, 0]
            else:  # AV separation: all speakers' mouths at once, output order = mouth order
                est = self.model(audio, frames.unsqueeze(0))[0]
        if est.dim() != 2 or est.shape[-1] < length:
            raise RuntimeError(f"{type(self.model).__name__} returned shape {list(est.shape)} for "
                               f"{length} input samples; expected [n_src, >= {length}]")
        return est.float().cpu().numpy()

    def __call__(self, segment: np.ndarray, start: int) -> np.ndarray:
        length = segment.shape[-1]
        padded = max(length, self.min_len)
        audio = torch.from_numpy(np.ascontiguousarray(_fit(segment, padded))).to(self.device).unsqueeze(0)
        passes = []
        for offset in self.offsets:
            delayed = torch.nn.functional.pad(audio, (offset, 0)) if offset else audio
            for sign in self.signs:
                est = self._once(delayed * sign, start, offset + length)
                passes.append(est[:, offset:offset + length] * sign)
        est = average_passes(passes, self.reorder) if len(passes) > 1 else passes[0]
        if self.consistency:
            est = mixture_consistency(est, segment)
        return filter_tracks(est, segment, self.rate, self.filter_weight) if self.filter_weight else est


# --------------------------------------------------------------------------------------------- public API
def check_settings(chunk_seconds, overlap_seconds, **refinement) -> None:
    """ValueError for bad chunking (`check_chunking`) or test-time refinement (`check_refinement`) settings."""
    check_chunking(chunk_seconds, overlap_seconds)
    check_refinement(**refinement)


def check_chunking(chunk_seconds, overlap_seconds) -> None:
    """ValueError unless chunk_seconds > 0 (or None: one pass) and 0 <= overlap_seconds < chunk_seconds."""
    if chunk_seconds is not None and not (isinstance(chunk_seconds, (int, float)) and chunk_seconds > 0):
        raise ValueError(f"chunk_seconds must be a positive number of seconds (or null for one pass), "
                         f"got {chunk_seconds!r}")
    if not (isinstance(overlap_seconds, (int, float)) and 0 <= overlap_seconds
            and (chunk_seconds is None or overlap_seconds < chunk_seconds)):
        raise ValueError(f"overlap_seconds must be at least 0 and below chunk_seconds ({chunk_seconds!r}), "
                         f"got {overlap_seconds!r}")


@torch.inference_mode()
def separate_array(model, mix, sample_rate: int, mouths=None, chunk_seconds: float | None = 8.0,
                   overlap_seconds: float = 1.0, device="cpu", enrollment=None, shifts: int = SHIFTS,
                   flip_sign: bool = FLIP_SIGN, mixture_consistency: bool = MIXTURE_CONSISTENCY,
                   spectral_filter: float = SPECTRAL_FILTER) -> np.ndarray:
    """Separate `mix` (NumPy [L] or [C, L] at `sample_rate`) with `model`; returns float32 [n_out, L] at `sample_rate`.

    n_out is `model.n_src` for separation models and `len(mouths)` for extraction models, whose `mouths` is a
    list of per-speaker uint8 frames [T, 96, 96] at 25 fps (output k is speaker k). Voiceprint models also need
    `enrollment`: per speaker, an utterance of that speaker alone [Le] at `sample_rate`, or a voiceprint vector
    [model.voiceprint_dim]. Multi-channel input is
    averaged to mono unless `model.in_channels > 1`. Chunks are `chunk_seconds` long (None: the whole input at
    once) and overlap by `overlap_seconds`. Each chunk is the average of `shifts` passes delayed by fractions of
    the model's frame hop, each also run negated when `flip_sign`; `mixture_consistency` makes the tracks of
    single-channel separation models sum to the mixture and `spectral_filter` (a weight, 0: off) blends them
    with their Wiener-like filtering of the mixture (avss.inference.refine). The model is put in eval mode
    (restored afterwards) and moved to `device`. Raises ValueError for empty input, bad chunk or refinement
    settings or a visual model without mouths.
    """
    if isinstance(mix, torch.Tensor):
        mix = mix.detach().cpu().numpy()
    mix = np.asarray(mix, dtype=np.float32)
    if mix.ndim not in (1, 2):
        raise ValueError(f"mix must be [L] or [C, L], got shape {list(mix.shape)}")
    if mix.size == 0:
        raise ValueError(f"mix is empty (shape {list(mix.shape)}); nothing to separate")
    if not sample_rate or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    check_settings(chunk_seconds, overlap_seconds, shifts=shifts, flip_sign=flip_sign,
                   mixture_consistency=mixture_consistency, spectral_filter=spectral_filter)
    sample_rate = int(sample_rate)
    length = mix.shape[-1]

    in_channels = int(getattr(model, "in_channels", 1))
    if in_channels == 1:
        mix = to_mono(mix)
    elif mix.ndim != 2 or mix.shape[0] != in_channels:
        raise ValueError(f"{type(model).__name__} expects {in_channels}-channel audio [C, L], "
                         f"got shape {list(mix.shape)}")
    mix = np.nan_to_num(mix, nan=0.0, posinf=1.0, neginf=-1.0)

    mouth_list = _as_mouth_list(mouths) if model.needs_visual else None
    if model.needs_visual and not mouth_list:
        raise ValueError(f"{type(model).__name__} is an audio-visual model and needs the mouth frames of each "
                         "target speaker (mouths=[uint8 [T, 96, 96] per speaker]); use an audio-only model "
                         "to separate without video")
    extraction = model.needs_visual and getattr(model, "task", "separation") == "extraction"
    n_out = len(mouth_list) if extraction else int(model.n_src)
    needs_enrollment = "enrollment" in getattr(model, "extra_inputs", ())
    if needs_enrollment and (enrollment is None or len(enrollment) != n_out):
        given = "none" if enrollment is None else len(enrollment)
        raise ValueError(f"{type(model).__name__} needs one enrolment per target speaker ({n_out}; given: {given}): "
                         "an utterance of that speaker alone, or a voiceprint vector")

    rate = int(model.sample_rate)
    audio = resample(mix, sample_rate, rate)
    audio, gain = _to_training_level(audio)
    if gain is None:
        return np.zeros((n_out, length), dtype=np.float32)

    n = audio.shape[-1]
    min_len = max(1, math.ceil(MIN_SECONDS * rate))
    chunk = n if chunk_seconds is None else max(min_len, round(chunk_seconds * rate))
    overlap = min(round(overlap_seconds * rate), chunk - 1)
    align = rate // MOUTH_FPS if (model.needs_visual and rate % MOUTH_FPS == 0) else 1
    align_order = not model.needs_visual and getattr(model, "task", "separation") == "separation"

    was_training = model.training
    model.eval()
    model.to(device)
    try:
        extra = {"enrollment": _voiceprints(model, enrollment, sample_rate, device)} if needs_enrollment else None
        all_voices = not extraction and in_channels == 1 and n_out > 1  # the tracks make up the whole mixture
        run = _ChunkRunner(model, mouth_list, torch.device(device), min_len, extra,
                           offsets=tuple(shift_offsets(int(getattr(model, "frame_hop", 1)), shifts)),
                           signs=(1.0, -1.0) if flip_sign else (1.0,), reorder=align_order,
                           consistency=mixture_consistency and all_voices,
                           filter_weight=float(spectral_filter) if all_voices else 0.0)
        out = np.zeros((n_out, n), dtype=np.float32)
        prev, prev_start, prev_end = None, 0, 0
        for start, end in _chunk_plan(n, chunk, overlap, align):
            est = run(audio[..., start:end], start)
            shared = prev_end - start
            if shared > 0:
                perm, signs = match_tracks(prev[:, start - prev_start:], est[:, :shared], reorder=align_order)
                est = est[perm] * signs[:, None]
                w = _fade_in(shared)
                out[:, start:prev_end] = out[:, start:prev_end] * (1.0 - w) + est[:, :shared] * w
                out[:, prev_end:end] = est[:, shared:]
            else:
                out[:, start:end] = est
            prev, prev_start, prev_end = est, start, end
    finally:
        model.train(was_training)

    out /= gain
    out = _fit(resample(out, rate, sample_rate), length)
    return np.ascontiguousarray(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0), dtype=np.float32)


def separate_file(model, path, mouths_paths=None, **kw) -> tuple[np.ndarray, int]:
    """Separate an audio file; returns ([n_out, L] float32 at the file's rate, rate).

    `mouths_paths`: one `<ID>.npz` per target speaker for audio-visual models. Keyword arguments go to
    `separate_array` (chunk_seconds, overlap_seconds, device, shifts, flip_sign, mixture_consistency,
    spectral_filter).
    Unreadable inputs raise `InputError`.
    """
    audio, rate = load_audio(path, mono=int(getattr(model, "in_channels", 1)) == 1)
    mouths = [load_mouths(p) for p in mouths_paths] if mouths_paths else None
    return separate_array(model, audio, rate, mouths=mouths, **kw), rate
