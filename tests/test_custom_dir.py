"""Course-layout folder dataset, mouth loading and batch collation (generated files in tmp_path)."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avss.data.collate import collate_batch
from avss.data.custom_dir import CustomDirDataset, resolve_speakers, scan_custom_dir
from avss.data.mouths import load_mouths, match_frames, num_frames
from avss.io.errors import InputError

SR = 16000


def tone(n, freq=440.0, sr=SR, amp=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def write(path: Path, audio, sr=SR, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, **kw)
    return path


def mouth_file(path: Path, frames=None, t=10, value=7):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, data=np.full((t, 96, 96), value, np.uint8) if frames is None else frames)
    return path


def make_dir(root: Path, names, n=4000, refs=True, mouths=(), audio_level=True):
    base = root / "audio" if audio_level else root
    for i, name in enumerate(names):
        s1, s2 = tone(n, 300 + 50 * i), tone(n, 900 + 50 * i, amp=0.2)
        write(base / "mix" / f"{name}.wav", s1 + s2)
        if refs:
            write(base / "s1" / f"{name}.wav", s1)
            write(base / "s2" / f"{name}.wav", s2)
    for i, speaker in enumerate(mouths):
        mouth_file(root / "mouths" / f"{speaker}.npz", value=10 * (i + 1))
    return root


# ---------------------------------------------------------------------------------------------- scanning
def test_ids_with_underscores_resolved_by_mouth_files(tmp_path):
    make_dir(tmp_path, ["spk_a_1_spk_b"], mouths=["spk_a_1", "spk_b"])
    (entry,) = scan_custom_dir(tmp_path)
    assert entry.name == "spk_a_1_spk_b"
    assert entry.speakers == ("spk_a_1", "spk_b")
    assert entry.mouths == [tmp_path / "mouths" / "spk_a_1.npz", tmp_path / "mouths" / "spk_b.npz"]
    assert entry.refs == [tmp_path / "audio" / "s1" / "spk_a_1_spk_b.wav", tmp_path / "audio" / "s2" / "spk_a_1_spk_b.wav"]

    item = CustomDirDataset(tmp_path, SR)[0]
    assert item["mouths"].shape == (2, num_frames(4000, SR), 96, 96)
    assert item["mouths"].dtype == torch.uint8
    assert int(item["mouths"][0, 0, 0, 0]) == 10 and int(item["mouths"][1, 0, 0, 0]) == 20


def test_resolve_speakers_fallbacks():
    assert resolve_speakers("a_b_c", {"a_b", "c"}) == ("a_b", "c")
    assert resolve_speakers("a_b_c", {"a", "b_c"}) == ("a", "b_c")
    assert resolve_speakers("spk_a_1_spk_b", {"spk_a_1"}) == ("spk_a_1", "spk_b")  # one mouth file
    assert resolve_speakers("x_y_z", {"y_z"}) == ("x", "y_z")
    # LRS2-style names: the 6-token rule, with or without mouths (an SNR token sits between the ids)
    lrs2 = "vidA_00001_2.5_vidB_00002_-2.5"
    assert resolve_speakers(lrs2, set()) == ("vidA_00001", "vidB_00002")
    assert resolve_speakers(lrs2, {"vidA_00001"}) == ("vidA_00001", "vidB_00002")
    assert resolve_speakers(lrs2, {"vidA_00001", "vidB_00002"}) == ("vidA_00001", "vidB_00002")
    assert resolve_speakers("alice_bob", set()) == ("alice", "bob")  # exactly one "_"
    assert resolve_speakers("a_b_c", set()) is None  # ambiguous
    assert resolve_speakers("solo", set()) is None


def test_missing_references_and_mouths(tmp_path):
    make_dir(tmp_path, ["a_b", "c_d"], mouths=["a", "b", "c"])
    (tmp_path / "audio" / "s2" / "c_d.wav").unlink()
    (tmp_path / "audio" / "notes.txt").write_text("ignored")
    (tmp_path / "audio" / "mix" / "readme.txt").write_text("ignored")
    entries = scan_custom_dir(tmp_path)
    assert [e.name for e in entries] == ["a_b", "c_d"]
    assert entries[1].refs[1] is None and entries[1].refs[0] is not None
    assert entries[1].mouths[1] is None

    ds = CustomDirDataset(tmp_path, SR)
    good, partial = ds[0], ds[1]
    assert good["has_refs"] and "mouths" in good
    assert torch.count_nonzero(good["sources"]) > 0
    assert not partial["has_refs"] and "mouths" not in partial
    assert partial["sources"].shape == (2, partial["length"]) and torch.count_nonzero(partial["sources"]) == 0

    strict = CustomDirDataset(tmp_path, SR, require_refs=True)
    assert len(strict) == 1 and strict[0]["name"] == "a_b"
    assert len(CustomDirDataset(tmp_path, SR, require_mouths=True)) == 1


def test_no_references_at_all_and_layout_without_audio_level(tmp_path):
    make_dir(tmp_path, ["x_y"], refs=False, audio_level=False)
    (entry,) = scan_custom_dir(tmp_path)
    assert entry.mix == tmp_path / "mix" / "x_y.wav" and entry.refs == [None, None]
    assert entry.speakers == ("x", "y") and entry.mouths == [None, None]
    assert not CustomDirDataset(tmp_path, SR, load_mouths=True)[0]["has_refs"]
    with pytest.raises(InputError, match="none of the 1 mixtures"):
        CustomDirDataset(tmp_path, SR, require_refs=True)


def test_formats_wav_flac_mp3_ogg(tmp_path):
    n = 8000
    mix = tmp_path / "audio" / "mix"
    write(mix / "a_b.wav", tone(n))
    write(mix / "c_d.flac", tone(n), format="FLAC")
    write(mix / "e_f.ogg", tone(n), format="OGG", subtype="VORBIS")
    write(tmp_path / "audio" / "s1" / "a_b.flac", tone(n), format="FLAC")  # refs may use another extension
    names = ["a_b", "c_d", "e_f"]
    if "MP3" in sf.available_formats():
        write(mix / "g_h.mp3", tone(n), format="MP3")
        names.append("g_h")
    entries = scan_custom_dir(tmp_path)
    assert [e.name for e in entries] == names
    assert entries[0].refs[0].suffix == ".flac"
    ds = CustomDirDataset(tmp_path, SR)
    for i, name in enumerate(names):
        item = ds[i]
        assert item["name"] == name and item["mix"].dtype == torch.float32
        assert item["length"] == n, (name, item["length"])  # libsndfile trims codec delay/padding
        assert float(item["mix"].abs().max()) > 0.1
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3; mp3 reading not covered")


def test_same_stem_with_two_extensions_keeps_one(tmp_path):
    write(tmp_path / "mix" / "a_b.flac", tone(800), format="FLAC")
    write(tmp_path / "mix" / "a_b.wav", tone(800))
    with pytest.warns(UserWarning, match="several extensions"):
        (entry,) = scan_custom_dir(tmp_path)
    assert entry.mix.name == "a_b.wav"


def test_stereo_44k1_is_downmixed_and_resampled(tmp_path):
    sr_in, n_in = 44100, 22050  # 0.5 s
    left = tone(n_in, 500.0, sr=sr_in, amp=0.4)
    write(tmp_path / "audio" / "mix" / "l_r.wav", np.stack([left, np.zeros_like(left)], axis=1), sr=sr_in,
          subtype="FLOAT")
    write(tmp_path / "audio" / "s1" / "l_r.wav", np.stack([left, left], axis=1), sr=sr_in, subtype="FLOAT")
    write(tmp_path / "audio" / "s2" / "l_r.wav", np.zeros(n_in, np.float32), sr=sr_in, subtype="FLOAT")
    item = CustomDirDataset(tmp_path, SR)[0]
    assert item["orig_sample_rate"] == sr_in
    assert item["length"] == 8000 and item["mix"].shape == (8000,) and item["sources"].shape == (2, 8000)
    expected = tone(8000, 500.0, amp=0.2)  # mean of (left, silence) at 16 kHz
    mid = slice(500, 7500)
    np.testing.assert_allclose(item["mix"].numpy()[mid], expected[mid], atol=2e-3)
    np.testing.assert_allclose(item["sources"][0].numpy()[mid], 2 * expected[mid], atol=4e-3)


def test_corrupt_audio_raises_input_error_naming_the_file(tmp_path):
    make_dir(tmp_path, ["a_b"])
    bad = tmp_path / "audio" / "mix" / "c_d.wav"
    bad.write_bytes(b"RIFF....WAVEfmt definitely not audio" * 10)
    ds = CustomDirDataset(tmp_path, SR)
    assert ds[0]["name"] == "a_b"
    with pytest.raises(InputError) as err:
        ds[1]
    assert err.value.path == str(bad) and "c_d.wav" in str(err.value)


@pytest.mark.parametrize("make", ["missing_dir", "empty_dir", "empty_mix", "only_other_files"])
def test_empty_directory_raises_input_error(tmp_path, make):
    target = tmp_path / "data"
    if make != "missing_dir":
        target.mkdir()
    if make == "empty_mix":
        (target / "audio" / "mix").mkdir(parents=True)
    if make == "only_other_files":
        (target / "mix").mkdir()
        (target / "mix" / "a_b.txt").write_text("x")
        (target / "mix" / ".hidden_x.wav").write_bytes(b"x")
    with pytest.raises(InputError) as err:
        CustomDirDataset(target, SR)
    assert err.value.path == str(target)
    assert ("no mixtures found under" in err.value.reason) or make == "missing_dir"
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- mouths
def test_bad_mouth_files_raise_input_error(tmp_path):
    cases = {
        "no_key.npz": lambda p: np.savez(p, frames=np.zeros((3, 96, 96), np.uint8)),
        "bad_shape.npz": lambda p: np.savez(p, data=np.zeros((96, 96), np.uint8)),
        "bad_channels.npz": lambda p: np.savez(p, data=np.zeros((3, 96, 96, 4), np.uint8)),
        "no_frames.npz": lambda p: np.savez(p, data=np.zeros((0, 96, 96), np.uint8)),
        "out_of_range.npz": lambda p: np.savez(p, data=np.full((3, 96, 96), 300, np.int16)),
        "complex.npz": lambda p: np.savez(p, data=np.zeros((3, 96, 96), np.complex64)),
        "corrupt.npz": lambda p: p.write_bytes(b"PK\x03\x04 this is not a zip archive"),
        "plain.npz": lambda p: p.write_bytes(b"hello"),
        "array.npy": lambda p: np.save(p, np.zeros((3, 96, 96), np.uint8)),
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        if name.endswith(".npy"):
            path = path.with_suffix(".npy")
        with pytest.raises(InputError) as err:
            load_mouths(path)
        assert err.value.path == str(path), name
        assert "\n" not in str(err.value), name
    with pytest.raises(InputError, match="not found"):
        load_mouths(tmp_path / "nope.npz")
    with pytest.raises(InputError, match="no 'data' array"):
        load_mouths(tmp_path / "no_key.npz")


def test_bad_mouth_file_in_dataset_names_the_file(tmp_path):
    make_dir(tmp_path, ["a_b"], mouths=["a", "b"])
    bad = tmp_path / "mouths" / "b.npz"
    np.savez(bad, data=np.zeros((4, 5), np.uint8))
    with pytest.raises(InputError) as err:
        CustomDirDataset(tmp_path, SR)[0]
    assert err.value.path == str(bad) and "shape" in err.value.reason
    assert "mouths" not in CustomDirDataset(tmp_path, SR, load_mouths=False)[0]


def test_mouth_conversions(tmp_path):
    rgb = np.zeros((2, 96, 96, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 200, 50
    out = load_mouths(mouth_file(tmp_path / "rgb.npz", rgb))
    assert out.shape == (2, 96, 96) and out.dtype == np.uint8
    assert int(out[0, 0, 0]) == round(0.299 * 100 + 0.587 * 200 + 0.114 * 50)

    big = np.full((3, 120, 160), 77, np.uint8)
    small = np.full((3, 48, 48, 1), 33, np.uint8)
    unit = np.full((3, 96, 96), 0.5, np.float32)
    assert np.all(load_mouths(mouth_file(tmp_path / "big.npz", big)) == 77)
    assert np.all(load_mouths(mouth_file(tmp_path / "small.npz", small)) == 33)
    assert np.all(load_mouths(mouth_file(tmp_path / "unit.npz", unit)) == 128)
    ok = np.arange(5 * 96 * 96).reshape(5, 96, 96).astype(np.uint8)
    np.testing.assert_array_equal(load_mouths(mouth_file(tmp_path / "ok.npz", ok)), ok)


def test_mouth_frames_matched_to_audio_length():
    frames = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 96, 96), np.uint8)
    assert num_frames(16000, 16000) == 25 and num_frames(8000, 16000) == 13 and num_frames(1, 16000) == 1
    padded = match_frames(frames, 25)
    assert padded.shape == (25, 96, 96) and np.all(padded[10:] == 9) and np.all(padded[9] == 9)
    assert match_frames(frames, 4).shape[0] == 4


# ---------------------------------------------------------------------------------------------- segments
def _ramp_dir(tmp_path, n=16000):
    ramp = (np.arange(n) / n).astype(np.float32) * 0.5
    write(tmp_path / "audio" / "mix" / "a_b.wav", ramp, subtype="FLOAT")
    write(tmp_path / "audio" / "s1" / "a_b.wav", ramp, subtype="FLOAT")
    write(tmp_path / "audio" / "s2" / "a_b.wav", -ramp, subtype="FLOAT")
    frames = np.arange(25, dtype=np.uint8)[:, None, None] * np.ones((1, 96, 96), np.uint8)
    mouth_file(tmp_path / "mouths" / "a.npz", frames)
    mouth_file(tmp_path / "mouths" / "b.npz", frames[:20])  # too short: padded with its last frame
    return ramp


def test_segment_crop_is_frame_aligned_and_deterministic(tmp_path):
    ramp = _ramp_dir(tmp_path)
    ds = CustomDirDataset(tmp_path, SR, segment=0.5, deterministic=True, seed=3)
    item = ds[0]
    assert item["length"] == 8000 and item["mix"].shape == (8000,) and item["sources"].shape == (2, 8000)
    assert item["mouths"].shape == (2, 13, 96, 96)
    start = int(np.argmin(np.abs(ramp - float(item["mix"][0]))))
    assert start % 640 == 0  # 16000 / 25 samples per video frame
    np.testing.assert_allclose(item["mix"].numpy(), ramp[start:start + 8000], atol=1e-6)
    np.testing.assert_allclose(item["sources"][1].numpy(), -ramp[start:start + 8000], atol=1e-6)
    first = start // 640
    assert int(item["mouths"][0, 0, 0, 0]) == first
    assert int(item["mouths"][0, -1, 0, 0]) == first + 12
    assert int(item["mouths"][1, -1, 0, 0]) == min(first + 12, 19)
    again = CustomDirDataset(tmp_path, SR, segment=0.5, deterministic=True, seed=3)[0]
    assert torch.equal(again["mix"], item["mix"]) and torch.equal(again["mouths"], item["mouths"])

    torch.manual_seed(0)
    starts = {float(CustomDirDataset(tmp_path, SR, segment=0.5)[0]["mix"][0]) for _ in range(8)}
    assert len(starts) > 1  # random crops for training
    whole = CustomDirDataset(tmp_path, SR, segment=2.0)[0]  # longer than the file: returned whole
    assert whole["length"] == 16000 and whole["mouths"].shape[1] == 25


def test_extraction_items_one_per_speaker(tmp_path):
    make_dir(tmp_path, ["a_b"], mouths=["a", "b"])
    ds = CustomDirDataset(tmp_path, SR, n_src=1)
    assert len(ds) == 2
    one, two = ds[0], ds[1]
    assert [one["name"], two["name"]] == ["a_b_s1", "a_b_s2"]
    assert one["sources"].shape == (1, 4000) and one["mouths"].shape == (1, num_frames(4000, SR), 96, 96)
    both = CustomDirDataset(tmp_path, SR)[0]
    assert torch.equal(one["sources"][0], both["sources"][0]) and torch.equal(two["sources"][0], both["sources"][1])
    assert torch.equal(two["mouths"][0], both["mouths"][1])
    with pytest.raises(ValueError):
        CustomDirDataset(tmp_path, SR, n_src=3)


# ---------------------------------------------------------------------------------------------- collate
def test_collate_pads_to_longest(tmp_path):
    make_dir(tmp_path, ["a_b"], n=4000, mouths=["a", "b"])
    write(tmp_path / "audio" / "mix" / "c_d.wav", tone(6400))
    for k in ("s1", "s2"):
        write(tmp_path / "audio" / k / "c_d.wav", tone(6400))
    mouth_file(tmp_path / "mouths" / "c.npz", value=50)
    mouth_file(tmp_path / "mouths" / "d.npz", value=60)
    ds = CustomDirDataset(tmp_path, SR)
    batch = collate_batch([ds[0], ds[1]])
    assert batch["mix"].shape == (2, 6400) and batch["sources"].shape == (2, 2, 6400)
    assert batch["lengths"].tolist() == [4000, 6400] and batch["lengths"].dtype == torch.int64
    assert batch["names"] == ["a_b", "c_d"]
    assert torch.all(batch["mix"][0, 4000:] == 0) and torch.all(batch["sources"][0, :, 4000:] == 0)
    assert torch.equal(batch["mix"][1], ds[1]["mix"])
    assert batch["mouths"].shape == (2, 2, 10, 96, 96) and batch["mouths"].dtype == torch.uint8
    assert torch.all(batch["mouths"][0, :, 7:] == batch["mouths"][0, :, 6:7])  # padded with the last frame
    assert batch["has_refs"].tolist() == [True, True]

    (tmp_path / "mouths" / "d.npz").unlink()
    ds = CustomDirDataset(tmp_path, SR)
    batch = collate_batch([ds[0], ds[1]])
    assert "mouths" not in batch  # only when every item has them

    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_batch)
    assert next(iter(loader))["mix"].shape == (2, 6400)


def test_hydra_configs_instantiate(tmp_path):
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    make_dir(tmp_path, ["a_b", "c_d"], n=16000, mouths=["a", "b", "c", "d"])
    root = Path(__file__).resolve().parents[1] / "configs" / "data" / "custom_dir.yaml"
    cfg = OmegaConf.create({"model": {"sample_rate": 8000}, "data": OmegaConf.load(root)})
    cfg.data.train.data_dir = str(tmp_path)
    cfg.data.val.data_dir = str(tmp_path)
    train = hydra_utils.instantiate(cfg.data.train)
    val = hydra_utils.instantiate(cfg.data.val)
    assert isinstance(train, CustomDirDataset) and train.sample_rate == 8000 and len(val) == 2
    assert val[0]["mix"].shape == (8000,)  # 1 s file at 8 kHz, shorter than the 4 s crop
