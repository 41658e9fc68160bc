"""Mixture-set builder (avss.data.mixture_sets) on tiny generated corpora in tmp_path."""
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avss.data.custom_dir import scan_custom_dir
from avss.data.mixture_sets import make_mixture_set, read_manifest, utterance_id, write_mixture
from avss.io.audio import load_audio
from avss.io.errors import InputError

SR = 16000
REPO = Path(__file__).resolve().parents[1]


def make_corpus(root: Path, speakers=("a", "b", "c"), utts=3, seed=0, folder_layout=True, rate=SR):
    """Speech-like test signals: noise under a 3-5 Hz envelope, 0.5-0.9 s, a different level per file."""
    rng = np.random.default_rng(seed)
    for spk in speakers:
        for u in range(utts):
            n = int(rng.uniform(0.5, 0.9) * rate)
            t = np.arange(n) / rate
            env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t)
            audio = (rng.uniform(0.02, 0.3) * env * rng.standard_normal(n)).clip(-1, 1).astype(np.float32)
            rel = f"{spk}/{spk}-{u}.flac" if folder_layout else f"{u}_{spk}_{u}.wav"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(root / rel), audio, rate)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One set of 6 mixtures (wav/flac cycling, last one without references), shared by the checks below."""
    tmp = tmp_path_factory.mktemp("set")
    corpus = make_corpus(tmp / "corpus")
    rows = make_mixture_set(corpus, tmp / "out", 6, sample_rate=SR, max_seconds=0.7, seed=3,
                            formats=("wav", "flac"), drop_reference_for=1)
    return tmp / "out", rows


def int16(path):
    return sf.read(str(path), dtype="int16")[0].astype(np.int64)


def rms_db(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def tree_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_set_parses_with_scan_custom_dir(built):
    out, rows = built
    entries = {e.name: e for e in scan_custom_dir(out)}
    assert sorted(entries) == sorted(r["name"] for r in rows)
    assert len(rows) == 6
    for row in rows:
        entry = entries[row["name"]]
        assert entry.speakers == (row["id1"], row["id2"])  # s1 is the speaker named first
        assert entry.has_mouths
        assert row["spk1"] != row["spk2"]
        assert row["id1"].startswith(row["spk1"] + "-") and "_" not in row["id1"] + row["id2"]
    assert [r["sample_rate"] for r in read_manifest(out / "manifest.csv")] == [str(SR)] * 6


def test_mix_is_sum_of_references(built):
    out, rows = built
    for row in rows[:-1]:
        mix = int16(out / row["mix_file"])
        s1, s2 = (int16(out / "audio" / k / f"{row['name']}.wav") for k in ("s1", "s2"))
        assert len(mix) == len(s1) == len(s2) == round(float(row["seconds"]) * SR)
        assert np.max(np.abs(mix - (s1 + s2))) <= 1  # at most one 16-bit step
        assert np.max(np.abs(mix)) <= 0.99 * 32768 + 1


def test_relative_level_and_overall_level(built):
    out, rows = built
    snrs = []
    for row in rows[:-1]:
        s1, _ = load_audio(out / "audio" / "s1" / f"{row['name']}.wav")
        s2, _ = load_audio(out / "audio" / "s2" / f"{row['name']}.wav")
        mix, _ = load_audio(out / row["mix_file"])
        assert rms_db(s1) - rms_db(s2) == pytest.approx(float(row["snr_db"]), abs=0.1)
        assert -21.0 < rms_db(mix) < -19.0  # -20 dBFS target (these signals never need peak protection)
        snrs.append(float(row["snr_db"]))
    assert all(-5.0 <= s <= 5.0 for s in snrs) and len(set(snrs)) == len(snrs)


def test_deterministic_for_a_seed(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    kwargs = dict(sample_rate=SR, max_seconds=0.5, formats=("wav", "flac"))
    make_mixture_set(corpus, tmp_path / "a", 4, seed=7, **kwargs)
    make_mixture_set(corpus, tmp_path / "b", 4, seed=7, **kwargs)
    make_mixture_set(corpus, tmp_path / "c", 4, seed=8, **kwargs)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert (tmp_path / "a" / "manifest.csv").read_bytes() != (tmp_path / "c" / "manifest.csv").read_bytes()


def test_formats_cycle_and_references_stay_wav(tmp_path):
    formats = ("wav", "flac", "mp3") if "MP3" in sf.available_formats() else ("wav", "flac", "ogg")
    rows = make_mixture_set(make_corpus(tmp_path / "corpus"), tmp_path / "out", 5, max_seconds=0.5,
                            formats=formats, mouths=False)
    assert [Path(r["mix_file"]).suffix for r in rows] == [f".{formats[i % 3]}" for i in range(5)]
    for row in rows:
        assert (tmp_path / "out" / "audio" / "s1" / f"{row['name']}.wav").is_file()
        mix, _ = load_audio(tmp_path / "out" / row["mix_file"], SR)  # every format decodes
        assert abs(len(mix) - round(float(row["seconds"]) * SR)) <= SR // 100
    assert not (tmp_path / "out" / "mouths").exists()
    with pytest.raises(ValueError):
        make_mixture_set(tmp_path / "corpus", tmp_path / "bad", 2, formats=("aac",))


def test_drop_reference_for_removes_last_references(built):
    out, rows = built
    entries = {e.name: e for e in scan_custom_dir(out)}
    assert [entries[r["name"]].has_refs for r in rows] == [True] * 5 + [False]
    assert [r["has_refs"] for r in rows] == [1] * 5 + [0]
    assert entries[rows[-1]["name"]].refs == [None, None]
    assert entries[rows[-1]["name"]].has_mouths  # mouths are still there


def test_mouth_files_have_one_frame_per_40ms(built):
    out, rows = built
    for row in rows:
        assert float(row["seconds"]) * 25 == pytest.approx(round(float(row["seconds"]) * 25))  # whole frames
        for speaker_id in (row["id1"], row["id2"]):
            with np.load(out / "mouths" / f"{speaker_id}.npz") as archive:
                frames = archive["data"]
            assert frames.dtype == np.uint8
            assert frames.shape == (int(np.ceil(float(row["seconds"]) * 25)), 96, 96)


def test_write_mixture_peak_protection_and_frame_count(tmp_path):
    n = 1000  # 62.5 ms: not a whole number of video frames -> ceil gives 2
    t = np.arange(n) / SR
    s1 = (0.8 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    s2 = (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    written = write_mixture(tmp_path, "x_1", "y", s1, s2, SR, ext="flac", rng=np.random.default_rng(0))
    mix, a, b = (int16(written[k]) for k in ("mix", "s1", "s2"))
    assert np.array_equal(mix, a + b)
    assert np.max(np.abs(mix)) <= 0.99 * 32768 + 1 and np.max(np.abs(mix)) > 0.98 * 32768
    assert np.max(np.abs(a)) / np.max(np.abs(b)) == pytest.approx(2.0, rel=1e-3)  # scaled together
    for path in written["mouths"]:
        assert np.load(path)["data"].shape == (2, 96, 96)
    (entry,) = scan_custom_dir(tmp_path)
    assert entry.speakers == ("x_1", "y") and entry.has_refs
    with pytest.raises(ValueError):
        write_mixture(tmp_path, "y", "y", s1, s2, SR)


def test_utterances_balanced_and_pairs_not_repeated(tmp_path):
    rows = make_mixture_set(make_corpus(tmp_path / "corpus"), tmp_path / "out", 9, max_seconds=0.3, mouths=False)
    uses = {}
    for row in rows:
        for utt in (row["utt1"], row["utt2"]):
            uses[utt] = uses.get(utt, 0) + 1
    assert len(uses) == 9 and set(uses.values()) == {2}
    pairs = [frozenset((r["utt1"], r["utt2"])) for r in rows]
    assert len(set(pairs)) == len(pairs)
    ids = [r["id1"] for r in rows] + [r["id2"] for r in rows]
    assert len(set(ids)) == len(ids)  # a reused utterance gets its own mouth ID


def test_filename_labels_joined_sources_and_resampling(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", speakers=("ann", "bob", "cy"), utts=4, folder_layout=False, rate=8000)
    rows = make_mixture_set(corpus, tmp_path / "out", 3, sample_rate=SR, speaker_regex=r"^\d+_([a-z]+)_",
                            files_per_source=3, speakers=["ann", "bob"], mouths=False)
    for row in rows:
        assert {row["spk1"], row["spk2"]} == {"ann", "bob"}
        for utt, spk in ((row["utt1"], row["spk1"]), (row["utt2"], row["spk2"])):
            parts = utt.split("+")
            assert len(parts) == 3 and all(f"_{spk}_" in p for p in parts)
        assert sf.info(str(tmp_path / "out" / row["mix_file"])).samplerate == SR
        assert float(row["seconds"]) > 1.5  # three 0.5-0.9 s files plus two 0.1 s gaps
    with pytest.raises(InputError):
        make_mixture_set(corpus, tmp_path / "one", 2, speaker_regex=r"^\d+_([a-z]+)_", speakers=["ann"])
    with pytest.raises(InputError):  # refuses to mix a new set into an existing one
        make_mixture_set(corpus, tmp_path / "out", 2, speaker_regex=r"^\d+_([a-z]+)_")
    assert utterance_id("ann", ["0_ann_3.wav"]) == "ann-0-3"
    assert utterance_id("1688", ["1688/1688-142285-0000.flac"]) == "1688-142285-0000"


def test_make_eval_set_script_presets_and_overrides(tmp_path):
    spec = importlib.util.spec_from_file_location("make_eval_set", REPO / "scripts" / "make_eval_set.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    kwargs = script.resolve(script.parse_args(["--preset", "fsdd", "--n", "5", "--formats", "wav,mp3"]))
    assert kwargs["files_per_source"] == 3 and kwargs["n_mixtures"] == 5 and kwargs["formats"] == ("wav", "mp3")
    kwargs = script.resolve(script.parse_args(["--preset", "test-other"]))
    assert (kwargs["n_mixtures"], kwargs["seed"], kwargs["sample_rate"], kwargs["max_seconds"],
            kwargs["snr_range"], kwargs["speaker_regex"]) == (100, 0, 16000, 6.0, 5.0, r"^(\d+)/")
    corpus = make_corpus(tmp_path / "corpus")
    argv = ["--corpus", str(corpus), "--out", str(tmp_path / "out"), "--n", "2", "--no-mouths", "--drop-refs", "1"]
    assert script.main(argv) == 0
    assert len(scan_custom_dir(tmp_path / "out")) == 2
    assert script.main(argv) == 1  # existing set, no --overwrite: one-line error, non-zero exit
    assert script.main(argv + ["--overwrite"]) == 0
