"""Fixed two-speaker mixture sets written to disk in the course layout (evaluation sets, bundled examples).

    OUT/audio/mix/<ID1>_<ID2>.<ext>   mixture = s1 + s2 (wav, flac, mp3 or ogg)
    OUT/audio/s1/<ID1>_<ID2>.wav      reference of speaker ID1 (16-bit wav)
    OUT/audio/s2/<ID1>_<ID2>.wav      reference of speaker ID2
    OUT/mouths/<ID>.npz               SYNTHETIC mouth frames (avss.data.synthetic_mouths), key `data`,
                                      uint8 [T, 96, 96] at 25 fps, T = ceil(seconds * 25)
    OUT/manifest.csv                  one row per mixture (`make_mixture_set` only)

`write_mixture` writes one mixture; `make_mixture_set` draws a whole set from a speaker-labelled corpus.
A mouth ID names one use of one utterance (`<speaker>-<utterance>`, plus `-r2`, `-r3`... when the same
utterance is used again in a shorter or longer mixture), so each mouth file matches its mixture's audio.
"""
from __future__ import annotations

import csv
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from avss.data.mouths import MOUTH_FPS
from avss.data.synthetic_mouths import synthetic_mouth_stream
from avss.io.audio import AUDIO_EXTENSIONS, load_audio, save_audio
from avss.io.errors import InputError

MIX_FORMATS = ("wav", "flac", "mp3", "ogg")
PEAK = 0.99  # mixtures louder than this are scaled down together with their references
LEVEL_DBFS = -20.0  # RMS level of each mixture before peak protection
CONCAT_GAP_SECONDS = 0.1  # silence between the files joined into one source (files_per_source > 1)
MANIFEST_COLUMNS = ("name", "id1", "id2", "spk1", "spk2", "utt1", "utt2", "snr_db", "seconds", "sample_rate",
                    "mix_file", "has_refs")
_PCM16 = 32768.0  # 16-bit full scale as soundfile reads it back (int / 32768)
_LOSSY = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS")}
_ID_OK = re.compile(r"^[^/\\.][^/\\]*$")


# --------------------------------------------------------------------------------------------- one mixture
def save_npz(path, **arrays) -> None:
    """Like np.savez_compressed (same format, np.load reads it) but with a fixed member timestamp, so the
    same arrays always give the same bytes (regenerated files do not show up as changed in git)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)


def quantise_pcm16(audio: np.ndarray) -> np.ndarray:
    """Round float audio to the 16-bit grid (k / 32768), so that writing and reading it back is lossless."""
    return (np.clip(np.round(audio * _PCM16), -_PCM16, _PCM16 - 1) / _PCM16).astype(np.float32)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def scale_pair(s1: np.ndarray, s2: np.ndarray, snr_db: float,
               level_db: float = LEVEL_DBFS) -> tuple[np.ndarray, np.ndarray]:
    """RMS-normalise both sources, apply +snr_db/2 to s1 and -snr_db/2 to s2 (so s1 is `snr_db` dB above s2),
    then scale both so that the RMS of s1 + s2 is `level_db` dBFS."""
    a = s1 / max(rms(s1), 1e-8) * 10 ** (snr_db / 40)
    b = s2 / max(rms(s2), 1e-8) * 10 ** (-snr_db / 40)
    gain = 10 ** (level_db / 20) / max(rms(a + b), 1e-8)
    return (a * gain).astype(np.float32), (b * gain).astype(np.float32)


def _save(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    ext = path.suffix.lower().lstrip(".")
    if ext not in _LOSSY:
        save_audio(path, audio, sample_rate)  # 16-bit PCM wav/flac
        return
    # avss.io.audio.save_audio writes PCM only; lossy mixtures (to test decoding) go through libsndfile here
    fmt, subtype = _LOSSY[ext]
    if fmt not in sf.available_formats():
        raise InputError(path, f"this libsndfile ({sf.__libsndfile_version__}) cannot write {ext}",
                         "use wav/flac, or install libsndfile >= 1.1")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, format=fmt, subtype=subtype)


def write_mixture(out_dir, id1: str, id2: str, s1: np.ndarray, s2: np.ndarray, sample_rate: int,
                  ext: str = "wav", mouths: bool = True, rng: np.random.Generator | None = None,
                  references: bool = True, ref_ext: str = "wav", mouth_step: int = 1) -> dict:
    """Write mix = s1 + s2 as `out_dir/audio/mix/<id1>_<id2>.<ext>`, the references as
    `audio/s1|s2/<id1>_<id2>.<ref_ext>` (16-bit wav or flac) and (with `mouths`) one synthetic mouth file per speaker ID,
    `mouths/<id1>.npz` and `mouths/<id2>.npz` (T = ceil(len * 25 / sample_rate) frames), drawn with `rng`.

    s1 and s2 ([L] float, same length) are written as given, except that when the peak of the mix (or of a
    reference) exceeds 0.99 all three are scaled by the same factor; the references are rounded to the 16-bit
    grid first, so for wav/flac the stored mix equals s1 + s2 exactly. `references=False` skips s1/s2.
    `mouth_step` > 1 rounds mouth grey levels to that step (smaller files; used for the bundled examples).
    An existing mouth file of the same ID is overwritten: give every use of an utterance its own ID.
    Returns {"name", "mix", "s1", "s2", "mouths": [path, path] or None, "s1_audio", "s2_audio"}.
    """
    out_dir = Path(out_dir)
    ext = ext.lower().lstrip(".")
    if ext not in MIX_FORMATS:
        raise ValueError(f"mixture format must be one of {MIX_FORMATS}, got {ext!r}")
    ref_ext = ref_ext.lower().lstrip(".")
    if ref_ext not in ("wav", "flac"):
        raise ValueError(f"references are lossless: ref_ext must be 'wav' or 'flac', got {ref_ext!r}")
    for speaker_id in (id1, id2):
        if not speaker_id or not _ID_OK.match(speaker_id):
            raise ValueError(f"bad speaker ID {speaker_id!r}: non-empty, no '/' or '\\', not starting with '.'")
    if id1 == id2:
        raise ValueError(f"the two speaker IDs must differ (both {id1!r}): they name the mouth files")
    s1, s2 = np.asarray(s1, np.float32), np.asarray(s2, np.float32)
    if s1.ndim != 1 or s1.shape != s2.shape or s1.size == 0:
        raise ValueError(f"s1 and s2 must be 1-D of the same non-zero length, got {s1.shape} and {s2.shape}")

    peak = max(float(np.max(np.abs(s1 + s2))), float(np.max(np.abs(s1))), float(np.max(np.abs(s2))))
    if peak > PEAK:
        s1, s2 = s1 * (PEAK / peak), s2 * (PEAK / peak)
    s1, s2 = quantise_pcm16(s1), quantise_pcm16(s2)
    mix = s1 + s2  # sum of two 16-bit values below 0.99: exactly on the 16-bit grid

    name = f"{id1}_{id2}"
    paths = {"name": name, "mix": out_dir / "audio" / "mix" / f"{name}.{ext}", "s1": None, "s2": None,
             "mouths": None, "s1_audio": s1, "s2_audio": s2}
    _save(paths["mix"], mix, sample_rate)
    if references:
        for key, src in (("s1", s1), ("s2", s2)):
            paths[key] = out_dir / "audio" / key / f"{name}.{ref_ext}"
            save_audio(paths[key], src, sample_rate)
    if mouths:
        rng = rng if rng is not None else np.random.default_rng()
        (out_dir / "mouths").mkdir(parents=True, exist_ok=True)
        paths["mouths"] = []
        for speaker_id, src in ((id1, s1), (id2, s2)):
            frames = synthetic_mouth_stream(src, sample_rate, rng)
            if mouth_step > 1:
                frames = np.clip(frames // mouth_step * mouth_step + mouth_step // 2, 0, 255).astype(np.uint8)
            path = out_dir / "mouths" / f"{speaker_id}.npz"
            save_npz(path, data=frames)
            paths["mouths"].append(path)
    return paths


# --------------------------------------------------------------------------------------------- corpus
def list_speaker_files(corpus_dir, speaker_regex: str, min_files: int = 1, speakers=None,
                       min_seconds: float = 0.0) -> dict[str, list[str]]:
    """Map speaker label -> sorted relative paths (posix) of the audio files under `corpus_dir`.

    The label is group 1 of `speaker_regex` searched in the path relative to `corpus_dir` (files that do not
    match are ignored). Keeps only labels in `speakers` (if given) with >= `min_files` files; with
    `min_seconds`, files shorter than that are left out first (length from the file header).
    """
    root = Path(corpus_dir).expanduser()
    if not root.is_dir():
        raise InputError(root, "corpus folder not found", "check --corpus")
    pattern = re.compile(speaker_regex)
    if pattern.groups < 1:
        raise ValueError(f"speaker_regex {speaker_regex!r} needs a group capturing the speaker label")
    wanted = None if speakers is None else {str(s) for s in speakers}
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or path.name.startswith(".") or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        match = pattern.search(rel)
        if not match or (wanted is not None and match.group(1) not in wanted):
            continue
        if min_seconds > 0 and _duration(path) < min_seconds:
            continue
        found.setdefault(match.group(1), []).append(rel)
    return {spk: rels for spk, rels in sorted(found.items()) if len(rels) >= min_files}


def _duration(path: Path) -> float:
    try:
        return sf.info(str(path)).duration
    except Exception:
        return float("inf")  # not readable by libsndfile (e.g. m4a): keep it, load_audio decodes it later


def utterance_id(speaker: str, rel_paths) -> str:
    """`<speaker>-<utterance>`: the speaker label, then the file stem(s) without the label's own token,
    with every character outside [A-Za-z0-9-] turned into '-' (so IDs never contain '_')."""
    def clean(text: str) -> str:
        return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9-]", "-", text)).strip("-")

    spk = clean(speaker) or "spk"
    rest = []
    for rel in rel_paths:
        rest += [tok for tok in clean(Path(rel).stem).split("-") if tok and tok != spk]
    return "-".join([spk] + rest)


def _pick_sources(files: dict[str, list[str]], n_mixtures: int, rng: np.random.Generator,
                  files_per_source: int) -> list[tuple[tuple[str, list[str]], tuple[str, list[str]]]]:
    """Balanced draw: the first file of each source is the least used so far (random among ties), the second
    speaker's file the least used of the other speakers not yet paired with it; s1/s2 order is random."""
    pool = [(spk, rel) for spk, rels in files.items() for rel in rels]
    speaker_of = np.array([spk for spk, _ in pool])
    by_speaker = {spk: np.flatnonzero(speaker_of == spk) for spk in files}
    usage = np.zeros(len(pool), dtype=np.int64)
    paired: set[tuple[int, int]] = set()

    def least_used(candidates: np.ndarray) -> int:
        low = usage[candidates].min()
        return int(rng.choice(candidates[usage[candidates] == low]))

    def source(first: int) -> tuple[str, list[str]]:
        spk = speaker_of[first]
        others = by_speaker[spk][by_speaker[spk] != first]
        extra = []
        if files_per_source > 1:
            if len(others) == 0:
                others = np.array([first])
            extra = list(rng.choice(others, size=files_per_source - 1,
                                    replace=len(others) < files_per_source - 1))
        usage[extra] += 1
        return str(spk), [pool[first][1]] + [pool[k][1] for k in extra]

    picks = []
    for _ in range(n_mixtures):
        first = least_used(np.arange(len(pool)))
        others = np.flatnonzero(speaker_of != speaker_of[first])
        fresh = np.array([k for k in others if (min(first, k), max(first, k)) not in paired], dtype=np.int64)
        second = least_used(fresh if fresh.size else others)
        paired.add((min(first, second), max(first, second)))
        usage[[first, second]] += 1
        if rng.random() < 0.5:
            first, second = second, first
        picks.append((source(first), source(second)))
    return picks


def _load_source(corpus_dir: Path, rel_paths: list[str], sample_rate: int) -> np.ndarray:
    gap = np.zeros(int(round(CONCAT_GAP_SECONDS * sample_rate)), np.float32)
    parts = []
    for i, rel in enumerate(rel_paths):
        if i:
            parts.append(gap)
        parts.append(load_audio(corpus_dir / rel, sample_rate)[0])
    return np.concatenate(parts)


def _frame_aligned(n: int, sample_rate: int) -> int:
    """Round a length down to whole 40 ms video frames (when a frame is a whole number of samples)."""
    if sample_rate % MOUTH_FPS:
        return n
    hop = sample_rate // MOUTH_FPS
    return n - n % hop if n >= hop else n


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    existing = [p for p in (out_dir / "audio", out_dir / "mouths", out_dir / "manifest.csv") if p.exists()]
    if existing and not overwrite:
        raise InputError(out_dir, "already holds a mixture set", "pass overwrite=True (--overwrite) or another folder")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def make_mixture_set(corpus_dir, out_dir, n_mixtures: int, sample_rate: int = 16000, max_seconds: float = 6.0,
                     snr_range: float = 5.0, seed: int = 0, speaker_regex: str = r"^([^/]+)/",
                     formats=("wav",), mouths: bool = True, drop_reference_for: int = 0,
                     min_files_per_speaker: int = 1, speakers=None, min_seconds: float = 0.0,
                     files_per_source: int = 1, level_db: float = LEVEL_DBFS, overwrite: bool = False) -> list[dict]:
    """Write `n_mixtures` two-speaker mixtures drawn from `corpus_dir` to `out_dir` (course layout, see the
    module docstring) plus `out_dir/manifest.csv`; return the manifest rows.

    Sources: every mixture pairs utterances of two different speakers (label = group 1 of `speaker_regex`
    on the path relative to `corpus_dir`, e.g. r"^(\\d+)/" for LibriSpeech test-other). Utterances are used
    as evenly as possible and an utterance pair is not repeated while fresh pairs remain. With
    `files_per_source` = k > 1, each source joins k files of its speaker with 0.1 s of silence between them.
    `speakers`, `min_files_per_speaker` and `min_seconds` filter the corpus first.

    Mixing: both sources fully overlap, each CROPPED FROM ITS START to the mixture length
    min(len1, len2, max_seconds), rounded down to whole 40 ms video frames. Audio is decoded with
    `load_audio` and resampled to `sample_rate` with soxr. Each source is RMS-normalised; a relative level
    snr_db ~ U[-snr_range, +snr_range] is applied as +snr_db/2 dB to s1 and -snr_db/2 dB to s2, and the pair
    is scaled so that the mixture RMS is `level_db` (-20 dBFS), then peak-protected (see `write_mixture`).
    s1 is the speaker whose ID comes first in the mixture name.

    Files: mixture i is written in `formats[i % len(formats)]` (wav, flac, mp3, ogg); references are always
    16-bit wav. The last `drop_reference_for` mixtures get no references (to test missing-reference handling).
    `mouths` writes one synthetic mouth file per source. The set is a pure function of the corpus files and
    the arguments: the same `seed` gives the same files.
    """
    corpus_dir, out_dir = Path(corpus_dir).expanduser(), Path(out_dir)
    formats = tuple(f.lower().lstrip(".") for f in ([formats] if isinstance(formats, str) else formats))
    bad = [f for f in formats if f not in MIX_FORMATS]
    if not formats or bad:
        raise ValueError(f"formats must be taken from {MIX_FORMATS}, got {formats}")
    if n_mixtures < 1 or not 0 <= drop_reference_for <= n_mixtures:
        raise ValueError(f"need n_mixtures >= 1 and 0 <= drop_reference_for <= n_mixtures "
                         f"(got {n_mixtures}, {drop_reference_for})")
    if files_per_source < 1 or max_seconds <= 0 or snr_range < 0:
        raise ValueError("need files_per_source >= 1, max_seconds > 0 and snr_range >= 0")

    files = list_speaker_files(corpus_dir, speaker_regex, min_files_per_speaker, speakers, min_seconds)
    if len(files) < 2:
        raise InputError(corpus_dir, f"{len(files)} speaker(s) left after filtering (regex {speaker_regex!r}, "
                         f">= {min_files_per_speaker} files each); need at least 2", "check the regex and filters")
    _prepare_out_dir(out_dir, overwrite)

    rng = np.random.default_rng(seed)
    picks = _pick_sources(files, n_mixtures, rng, files_per_source)
    max_len = int(round(max_seconds * sample_rate))
    used_ids: set[str] = set()
    rows = []
    for i, ((spk1, rels1), (spk2, rels2)) in enumerate(picks):
        x1 = _load_source(corpus_dir, rels1, sample_rate)
        x2 = _load_source(corpus_dir, rels2, sample_rate)
        n = _frame_aligned(min(len(x1), len(x2), max_len), sample_rate)
        snr_db = float(rng.uniform(-snr_range, snr_range))
        s1, s2 = scale_pair(x1[:n], x2[:n], snr_db, level_db)
        id1, id2 = (_unique_id(utterance_id(spk, rels), used_ids) for spk, rels in ((spk1, rels1), (spk2, rels2)))
        has_refs = i < n_mixtures - drop_reference_for
        written = write_mixture(out_dir, id1, id2, s1, s2, sample_rate, ext=formats[i % len(formats)],
                                mouths=mouths, rng=np.random.default_rng([seed, i]), references=has_refs)
        rows.append({"name": written["name"], "id1": id1, "id2": id2, "spk1": spk1, "spk2": spk2,
                     "utt1": "+".join(rels1), "utt2": "+".join(rels2), "snr_db": f"{snr_db:.4f}",
                     "seconds": f"{n / sample_rate:.6f}", "sample_rate": sample_rate,
                     "mix_file": written["mix"].relative_to(out_dir).as_posix(), "has_refs": int(has_refs)})

    with open(out_dir / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _unique_id(base: str, used: set[str]) -> str:
    candidate, k = base, 1
    while candidate in used:
        k += 1
        candidate = f"{base}-r{k}"
    used.add(candidate)
    return candidate


def read_manifest(path) -> list[dict]:
    """Rows of a `manifest.csv` written by `make_mixture_set` (values as strings)."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
