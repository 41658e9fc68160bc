"""Mixtures read from a folder in the course layout.

    DIR/audio/mix/<ID1>_<ID2>.{wav,flac,mp3,ogg}   mixtures (required)
    DIR/audio/s1/<same stem>.{wav,flac,mp3,ogg}    reference of speaker 1 (optional, per file)
    DIR/audio/s2/<same stem>.{...}                 reference of speaker 2 (optional, per file)
    DIR/mouths/<ID>.npz                            mouth frames of speaker <ID> (optional; see avss.data.mouths)
    DIR/enrollment/<ID>.{wav,...,npy}              enrolment utterance or voiceprint of <ID> (optional; voiceprint
                                                   models only, see avss.data.enrollment)

The `audio/` level may be left out (`DIR/mix`, `DIR/s1`, `DIR/s2`). Files with other extensions and hidden
files (name starting with ".") are ignored. Speaker IDs may contain "_"; `resolve_speakers` explains how a
mixture stem is split into the two IDs.

`MixtureDataset` turns a list of `MixEntry` into items (dicts of tensors, see the class docstring); the
LRS2-2Mix dataset (`avss.data.lrs2_mix`) reuses it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avss.data.enrollment import ENROLLMENT_DIR, ENROLLMENT_EXTENSIONS
from avss.data.mouths import MOUTH_FPS, load_mouths as read_mouths, match_frames, num_frames
from avss.data.visual_cache import cached_path, is_up_to_date, load_cached
from avss.io.audio import load_audio, resample
from avss.io.errors import InputError

MIX_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")  # earlier wins when one stem has several files
_LAYOUT_HINT = "expected DIR/audio/mix/<ID1>_<ID2>.wav (or .flac/.mp3/.ogg), optional DIR/audio/s1, DIR/audio/s2"


@dataclass
class MixEntry:
    """One mixture on disk. `refs`, `mouths` and `enrollments` hold one path (or None when absent) per speaker."""

    name: str
    mix: Path
    refs: list = field(default_factory=lambda: [None, None])
    speakers: tuple | None = None
    mouths: list = field(default_factory=lambda: [None, None])
    enrollments: list = field(default_factory=lambda: [None, None])

    @property
    def has_refs(self) -> bool:
        return all(r is not None for r in self.refs)

    @property
    def has_mouths(self) -> bool:
        return all(m is not None for m in self.mouths)


# --------------------------------------------------------------------------------------------- scanning
def list_audio_files(folder: Path, extensions=MIX_EXTENSIONS) -> dict[str, Path]:
    """Map stem -> path for the audio files directly in `folder` ({} if it does not exist).

    When a stem exists with several extensions, the one listed first in `extensions` is kept (with a warning).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    rank = {ext: i for i, ext in enumerate(extensions)}
    found: dict[str, Path] = {}
    duplicates = []
    for path in sorted(folder.iterdir()):
        ext = path.suffix.lower()
        if ext not in rank or path.name.startswith(".") or not path.is_file():
            continue
        previous = found.get(path.stem)
        if previous is not None:
            duplicates.append(path.stem)
            if rank[previous.suffix.lower()] <= rank[ext]:
                continue
        found[path.stem] = path
    if duplicates:
        warnings.warn(f"{folder}: {len(duplicates)} name(s) exist with several extensions (e.g. "
                      f"{duplicates[0]!r}); keeping the first of {', '.join(extensions)}", stacklevel=2)
    return found


def parse_lrs2_name(stem: str) -> tuple[str, str] | None:
    """LRS2-2Mix rule: `<vid1>_<utt1>_<snr1>_<vid2>_<utt2>_<snr2>` -> (`vid1_utt1`, `vid2_utt2`), else None."""
    tokens = stem.split("_")
    if len(tokens) != 6 or not all(tokens):
        return None
    return f"{tokens[0]}_{tokens[1]}", f"{tokens[3]}_{tokens[4]}"


def resolve_speakers(stem: str, mouth_ids) -> tuple[str, str] | None:
    """Split a mixture stem into (ID1, ID2), using the set of IDs that have a mouth (or enrolment) file.

    Candidates are the LRS2 6-token reading (if the stem has 6 tokens) followed by every split at one "_",
    left to right. The first candidate whose two IDs both have mouth files wins; else the first with one of
    them; else the 6-token reading; else the only split of a stem with exactly one "_"; else None.
    """
    mouth_ids = set(mouth_ids)
    candidates = []
    lrs2 = parse_lrs2_name(stem)
    if lrs2 is not None:
        candidates.append(lrs2)
    for i, char in enumerate(stem):
        if char == "_" and 0 < i < len(stem) - 1:
            candidates.append((stem[:i], stem[i + 1:]))
    for needed in (2, 1):
        for left, right in candidates:
            if (left in mouth_ids) + (right in mouth_ids) >= needed:
                return left, right
    if lrs2 is not None:
        return lrs2
    if stem.count("_") == 1 and len(candidates) == 1:
        return candidates[0]
    return None


def _audio_root(data_dir: Path) -> Path | None:
    for root in (data_dir / "audio", data_dir):
        if (root / "mix").is_dir():
            return root
    return None


def scan_custom_dir(data_dir) -> list[MixEntry]:
    """List the mixtures under `data_dir` (course layout), sorted by name. Raises InputError if there are none."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(data_dir, "data directory not found", _LAYOUT_HINT)
    root = _audio_root(data_dir)
    mixes = list_audio_files(root / "mix") if root is not None else {}
    if not mixes:
        where = root / "mix" if root is not None else f"{data_dir / 'audio' / 'mix'} or {data_dir / 'mix'}"
        raise InputError(data_dir, f"no mixtures found under {where}", _LAYOUT_HINT)
    refs = [list_audio_files(root / "s1"), list_audio_files(root / "s2")]
    mouth_dir = data_dir / "mouths"
    mouth_ids = {p.stem for p in mouth_dir.glob("*.npz") if p.is_file()} if mouth_dir.is_dir() else set()
    enrollments = list_audio_files(data_dir / ENROLLMENT_DIR, ENROLLMENT_EXTENSIONS)

    entries = []
    for name in sorted(mixes):
        speakers = resolve_speakers(name, mouth_ids | set(enrollments))
        mouths, enrolled = [None, None], [None, None]
        if speakers is not None:
            mouths = [mouth_dir / f"{s}.npz" if s in mouth_ids else None for s in speakers]
            enrolled = [enrollments.get(s) for s in speakers]
        entries.append(MixEntry(name=name, mix=mixes[name], refs=[r.get(name) for r in refs],
                                speakers=speakers, mouths=mouths, enrollments=enrolled))
    return entries


# --------------------------------------------------------------------------------------------- dataset
def _fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[-1] >= n:
        return audio[..., :n]
    return np.pad(audio, (0, n - audio.shape[-1]))


class MixtureDataset(Dataset):
    """Items from a list of `MixEntry`.

    Each item is a dict:
      `mix` float32 [L] at `sample_rate` (downmixed, resampled with soxr);
      `sources` float32 [S, L] (S = n_src), zeros when a reference is missing, then `has_refs` is False;
      `mouths` uint8 [S, T, 96, 96] with T = ceil(L * 25 / sample_rate), only when `load_mouths` and the mouth
      files of all S speakers exist (frames trimmed, or padded by repeating the last frame, to T);
      with `visual_cache` (a tag of `<mouth folder>_emb/`, or a folder path; see avss.data.visual_cache) it is
      float32 [S, T, D] cached lip embeddings instead, read from `<cache>/<ID>.npy` for each mouth file;
      `name` str, `length` int (= L), `orig_sample_rate` int (rate of the mixture file), `has_refs` bool.

    `n_src=1` (target-speaker extraction) makes two items per mixture, one per target speaker k, named
    `<name>_s<k>`, with that speaker's reference and mouths only.
    `segment` (seconds) crops mixtures longer than that to `segment` seconds, starting on a video frame
    boundary: at random (torch RNG) by default, or a fixed crop per index with `deterministic=True` (from
    `seed`). Shorter mixtures are returned whole; `collate_batch` pads them.
    `require_refs` / `require_mouths` drop the entries lacking a reference / a mouth file. With `visual_cache`,
    an InputError is raised up front when a mouth file of an item has no up-to-date cached embeddings.
    """

    def __init__(self, entries: list[MixEntry], sample_rate: int, segment: float | None = None, n_src: int = 2,
                 load_mouths: bool = True, require_refs: bool = False, require_mouths: bool = False,
                 deterministic: bool = False, seed: int = 0, source=None, visual_cache: str | None = None):
        if n_src not in (1, 2):
            raise ValueError(f"n_src must be 1 (extraction) or 2 (separation), got {n_src}")
        if segment is not None and segment <= 0:
            raise ValueError(f"segment must be positive seconds or None, got {segment}")
        self.sample_rate = int(sample_rate)
        self.segment = segment
        self.n_src = n_src
        self.load_mouths = load_mouths
        self.visual_cache = str(visual_cache) if visual_cache else None
        self.deterministic = deterministic
        self.seed = seed
        self.entries = list(entries)
        self.items: list[tuple[MixEntry, list[int]]] = []
        groups = [[0, 1]] if n_src == 2 else [[0], [1]]
        for entry in self.entries:
            for speakers in groups:
                if require_refs and any(entry.refs[k] is None for k in speakers):
                    continue
                if require_mouths and any(entry.mouths[k] is None for k in speakers):
                    continue
                self.items.append((entry, speakers))
        if not self.items and self.entries:
            needs = " and ".join(w for w, on in (("references (s1, s2)", require_refs),
                                                  ("mouth files", require_mouths)) if on)
            raise InputError(source or self.entries[0].mix.parent,
                             f"none of the {len(self.entries)} mixtures has its {needs}",
                             "add the missing files, or set require_refs/require_mouths to false")
        if self.visual_cache and self.load_mouths:
            self._check_cache()

    def _check_cache(self) -> None:
        """Every mouth file an item will read must have cached embeddings at least as new as itself."""
        mouths = sorted({entry.mouths[k] for entry, speakers in self.items for k in speakers
                         if entry.mouths[k] is not None})
        stale = [m for m in mouths if not is_up_to_date(cached_path(m, self.visual_cache), m)]
        if stale:
            where = cached_path(stale[0], self.visual_cache)
            raise InputError(where.parent, f"{len(stale)} of {len(mouths)} mouth files have no up-to-date cached "
                                           f"lip embeddings (e.g. {where.name} for {stale[0]})",
                             "run python extract_visual_features.py with the frontend that made this cache, or "
                             "set visual_cache to null")

    @property
    def segment_samples(self) -> int | None:
        return None if self.segment is None else int(round(self.segment * self.sample_rate))

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, path: Path) -> tuple[np.ndarray, int]:
        audio, rate = load_audio(path, mono=True)
        if rate != self.sample_rate:
            audio = resample(audio, rate, self.sample_rate)
        return audio, rate

    def _crop_frame(self, index: int, n_samples: int) -> int | None:
        """First video frame of the crop, or None when no crop is needed."""
        seg = self.segment_samples
        if seg is None or n_samples <= seg:
            return None
        last = (n_samples - seg) * MOUTH_FPS // self.sample_rate  # start sample stays <= n_samples - seg
        if self.deterministic:
            return int(np.random.default_rng([self.seed, index]).integers(0, last + 1))
        return int(torch.randint(0, last + 1, ()).item())

    def __getitem__(self, index: int) -> dict:
        entry, speakers = self.items[index]
        mix, orig_rate = self._load(entry.mix)
        n = mix.shape[-1]
        refs = [entry.refs[k] for k in speakers]
        has_refs = all(r is not None for r in refs)
        if has_refs:
            sources = np.stack([_fit_length(self._load(r)[0], n) for r in refs])
        else:
            sources = np.zeros((len(speakers), n), dtype=np.float32)
        mouths = None
        mouth_paths = [entry.mouths[k] for k in speakers]
        if self.load_mouths and all(p is not None for p in mouth_paths):
            t = num_frames(n, self.sample_rate)
            if self.visual_cache:  # cached embeddings [T, D] per speaker
                mouths = np.stack([match_frames(load_cached(cached_path(p, self.visual_cache)), t)
                                   for p in mouth_paths])
            else:
                mouths = np.stack([match_frames(read_mouths(p), t) for p in mouth_paths])

        frame = self._crop_frame(index, n)
        if frame is not None:
            start, seg = frame * self.sample_rate // MOUTH_FPS, self.segment_samples
            mix, sources, n = mix[start:start + seg], sources[:, start:start + seg], seg
            if mouths is not None:
                t = num_frames(seg, self.sample_rate)
                mouths = np.stack([match_frames(m[frame:frame + t], t) for m in mouths])

        name = entry.name if self.n_src == 2 else f"{entry.name}_s{speakers[0] + 1}"
        item = {
            "mix": torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)),
            "sources": torch.from_numpy(np.ascontiguousarray(sources, dtype=np.float32)),
            "has_refs": has_refs,
            "name": name,
            "length": int(n),
            "orig_sample_rate": int(orig_rate),
        }
        if mouths is not None:
            item["mouths"] = torch.from_numpy(np.ascontiguousarray(mouths))
        return item


class CustomDirDataset(MixtureDataset):
    """Mixtures of a folder in the course layout (see the module docstring); items as in `MixtureDataset`."""

    def __init__(self, data_dir, sample_rate: int, segment: float | None = None, n_src: int = 2,
                 load_mouths: bool = True, require_refs: bool = False, require_mouths: bool = False,
                 deterministic: bool = False, seed: int = 0, visual_cache: str | None = None):
        self.data_dir = Path(data_dir)
        super().__init__(scan_custom_dir(self.data_dir), sample_rate, segment=segment, n_src=n_src,
                         load_mouths=load_mouths, require_refs=require_refs, require_mouths=require_mouths,
                         deterministic=deterministic, seed=seed, source=self.data_dir, visual_cache=visual_cache)
