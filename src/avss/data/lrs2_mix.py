"""LRS2-2Mix: two-speaker mixtures of LRS2 utterances (audio 16 kHz, mouths 25 fps).

Layout read by `scan_lrs2_mix` (split "tr", "cv" or "tt"; "train"/"val"/"valid"/"test" also accepted):

    ROOT/<split>/{mix,s1,s2}/<vid1>_<utt1>_<snr1>_<vid2>_<utt2>_<snr2>.wav
    MOUTH_DIR/<vid>_<utt>.npz          flat folder, shared by all splits

The s1/s2 mouths are `<vid1>_<utt1>.npz` and `<vid2>_<utt2>.npz` (tokens 0-1 and 3-4 of the name).
If `ROOT/<split>/mix.json` exists it is read instead of listing folders, as written by the usual LRS2-2Mix
preparation scripts: `mix.json` entries `[wav_path, n_samples]`, `s1.json`/`s2.json` entries
`[wav_path, mouth_npz_path, n_samples]`. Listed paths that do not exist (e.g. absolute paths of another
machine) are looked up by file name under `ROOT/<split>/{mix,s1,s2}` and `MOUTH_DIR` instead.
"""
from __future__ import annotations

import json
from pathlib import Path

from avss.data.custom_dir import MixEntry, MixtureDataset, list_audio_files, parse_lrs2_name
from avss.io.errors import InputError

SPLITS = {"tr": "tr", "train": "tr", "cv": "cv", "val": "cv", "valid": "cv", "tt": "tt", "test": "tt"}
_HINT = "expected ROOT/{tr,cv,tt}/{mix,s1,s2}/<vid1>_<utt1>_<snr1>_<vid2>_<utt2>_<snr2>.wav or ROOT/<split>/mix.json"

__all__ = ["LRS2MixDataset", "scan_lrs2_mix", "parse_lrs2_name", "SPLITS"]


def _split_dir(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown LRS2-2Mix split {split!r}; use one of tr, cv, tt")
    return root / SPLITS[split]


def _first_existing(candidates) -> Path | None:
    for path in candidates:
        if path is not None and Path(path).is_file():
            return Path(path)
    return None


def _mouth_path(mouth_dir: Path | None, speaker: str | None, listed: str | None = None) -> Path | None:
    candidates = []
    if mouth_dir is not None:
        if listed:
            candidates.append(mouth_dir / Path(listed).name)
        if speaker is not None:
            candidates.append(mouth_dir / f"{speaker}.npz")
    if listed:
        candidates.append(Path(listed))
    return _first_existing(candidates)


def _read_json(path: Path, width: int) -> list[list]:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read json list ({str(err).splitlines()[0]})", _HINT) from None
    fields = "[wav_path, n_samples]" if width == 2 else "[wav_path, mouth_npz_path, n_samples]"
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= width and isinstance(r[0], str)
                                             for r in rows):
        raise InputError(path, f"unexpected json format; entries must be {fields}", _HINT)
    return rows


def _scan_json(split_dir: Path, mouth_dir: Path | None) -> list[MixEntry]:
    mix_json = split_dir / "mix.json"
    mix_rows = _read_json(mix_json, 2)
    if not mix_rows:
        raise InputError(mix_json, "lists no mixtures", _HINT)
    ref_rows = []
    for k in ("s1", "s2"):
        path = split_dir / f"{k}.json"
        ref_rows.append({Path(r[0]).stem: r for r in _read_json(path, 3)} if path.is_file() else {})

    entries, missing = {}, []
    for row in mix_rows:
        listed = Path(row[0])
        mix = _first_existing([listed, mix_json.parent / listed, split_dir / "mix" / listed.name])
        if mix is None:
            missing.append(row[0])
            continue
        name = listed.stem
        speakers = parse_lrs2_name(name)
        refs, mouths = [], []
        for k, rows in enumerate(ref_rows):
            ref_row = rows.get(name)
            ref_listed = Path(ref_row[0]) if ref_row else None
            refs.append(_first_existing([ref_listed, ref_listed and mix_json.parent / ref_listed,
                                         split_dir / f"s{k + 1}" / f"{name}{mix.suffix}"]))
            mouths.append(_mouth_path(mouth_dir, speakers[k] if speakers else None, ref_row[1] if ref_row else None))
        entries[name] = MixEntry(name=name, mix=mix, refs=refs, speakers=speakers, mouths=mouths)
    if missing:
        raise InputError(mix_json, f"{len(missing)} of {len(mix_rows)} listed mixtures do not exist "
                                   f"(first: {missing[0]})",
                         f"put them under {split_dir / 'mix'}, or regenerate or remove the json")
    return [entries[name] for name in sorted(entries)]


def _scan_tree(split_dir: Path, mouth_dir: Path | None) -> list[MixEntry]:
    mixes = list_audio_files(split_dir / "mix")
    if not mixes:
        raise InputError(split_dir, f"no mixtures found under {split_dir / 'mix'}", _HINT)
    refs = [list_audio_files(split_dir / "s1"), list_audio_files(split_dir / "s2")]
    entries = []
    for name in sorted(mixes):
        speakers = parse_lrs2_name(name)
        mouths = [_mouth_path(mouth_dir, s) for s in speakers] if speakers else [None, None]
        entries.append(MixEntry(name=name, mix=mixes[name], refs=[r.get(name) for r in refs],
                                speakers=speakers, mouths=mouths))
    return entries


def scan_lrs2_mix(root, split: str, mouth_dir=None) -> list[MixEntry]:
    """List the mixtures of one LRS2-2Mix split, sorted by name (from `mix.json` if present, else folders)."""
    root = Path(root)
    split_dir = _split_dir(root, split)
    if not split_dir.is_dir():
        raise InputError(split_dir, "LRS2-2Mix split directory not found", _HINT)
    if mouth_dir is not None:
        mouth_dir = Path(mouth_dir)
        if not mouth_dir.is_dir():
            raise InputError(mouth_dir, "mouth directory not found", "pass the folder holding <vid>_<utt>.npz")
    if (split_dir / "mix.json").is_file():
        return _scan_json(split_dir, mouth_dir)
    return _scan_tree(split_dir, mouth_dir)


class LRS2MixDataset(MixtureDataset):
    """One split of LRS2-2Mix; items as in `avss.data.custom_dir.MixtureDataset`.

    With `load_mouths=False`, or `mouth_dir=None` and no existing mouth paths in s1/s2.json, items carry no
    mouths. With a `mouth_dir` and `load_mouths`, an InputError is raised when no mixture at all has both of
    its mouth files (most likely a wrong folder).
    """

    def __init__(self, root, split: str, mouth_dir=None, sample_rate: int = 16000, segment: float | None = None,
                 n_src: int = 2, load_mouths: bool = True, require_refs: bool = False,
                 require_mouths: bool = False, deterministic: bool = False, seed: int = 0,
                 visual_cache: str | None = None):
        self.root = Path(root)
        self.split = SPLITS.get(split, split)
        self.mouth_dir = None if mouth_dir is None else Path(mouth_dir)
        entries = scan_lrs2_mix(self.root, split, self.mouth_dir)
        if self.mouth_dir is not None and load_mouths and not any(e.has_mouths for e in entries):
            example = next((e.speakers[0] for e in entries if e.speakers), None)
            looked = f" (looked for e.g. {example}.npz)" if example else ""
            raise InputError(self.mouth_dir, f"no mouth files found for any of the {len(entries)} "
                                             f"{self.split} mixtures{looked}",
                             "pass the flat folder of <vid>_<utt>.npz, or mouth_dir=null for audio only")
        super().__init__(entries, sample_rate, segment=segment, n_src=n_src,
                         load_mouths=load_mouths, require_refs=require_refs,
                         require_mouths=require_mouths, deterministic=deterministic, seed=seed,
                         source=_split_dir(self.root, split), visual_cache=visual_cache)
