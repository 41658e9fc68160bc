"""Speaker-labelled speech corpora loaded into memory at one sample rate (cached as .npz on disk).

A corpus is a folder of audio files plus a regex whose first group is the speaker label, applied to the path
relative to the folder (so both `spk/utt.flac` and `spk-utt.flac` layouts work).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avss.io.audio import AUDIO_EXTENSIONS, load_audio
from avss.io.errors import InputError

DEFAULT_CACHE = Path(os.environ.get("AVSS_CACHE", Path.home() / ".cache" / "avss"))


@dataclass
class Corpus:
    """Utterances grouped by speaker: `speakers[label] = [np.float32 arrays]` at `sample_rate`."""

    name: str
    sample_rate: int
    speakers: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(len(u) for utts in self.speakers.values() for u in utts) / self.sample_rate

    def subset(self, labels) -> "Corpus":
        keep = set(labels)
        return Corpus(self.name, self.sample_rate, {k: v for k, v in self.speakers.items() if k in keep})


def _list_files(root: Path, speaker_regex: str) -> list[tuple[str, Path]]:
    pattern = re.compile(speaker_regex)
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        match = pattern.search(path.relative_to(root).as_posix())
        if match:
            found.append((match.group(1), path))
    return found


def load_corpus(path, speaker_regex: str, sample_rate: int, min_utterances: int = 1, min_seconds: float = 0.0,
                exclude_speakers=(), cache_dir=DEFAULT_CACHE, name: str | None = None) -> Corpus:
    """Decode every matching file of `path` at `sample_rate`; keep speakers with >= `min_utterances` files and
    >= `min_seconds` of speech. Decoding 100 min of audio takes a while, so results are cached under `cache_dir`."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(root, "corpus folder not found", "fix the path in the data config")
    files = _list_files(root, speaker_regex)
    if not files:
        raise InputError(root, f"no audio files whose path matches {speaker_regex!r}", "check the speaker_regex")
    key = hashlib.sha1(f"{root.resolve()}|{speaker_regex}|{sample_rate}|{len(files)}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"corpus_{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        labels, lengths, audio = stored["labels"], stored["lengths"], stored["audio"]
    else:
        chunks, labels = [], []
        for label, file in files:
            try:
                chunks.append(load_audio(file, sample_rate)[0])
                labels.append(label)
            except InputError:
                continue  # a broken file in a training corpus is skipped, not fatal
        lengths = np.array([len(c) for c in chunks])
        audio, labels = np.concatenate(chunks), np.array(labels)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, labels=labels, lengths=lengths, audio=audio)
            tmp.replace(cache)
    speakers: dict[str, list[np.ndarray]] = {}
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for label, start, length in zip(labels, starts, lengths):
        speakers.setdefault(str(label), []).append(audio[start:start + length])
    excluded = {str(s) for s in exclude_speakers}
    speakers = {
        k: v for k, v in speakers.items()
        if k not in excluded and len(v) >= min_utterances and sum(map(len, v)) >= min_seconds * sample_rate
    }
    return Corpus(name or root.name, sample_rate, speakers)
