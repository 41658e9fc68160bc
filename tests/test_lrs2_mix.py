"""LRS2-2Mix dataset on a tiny generated tree (folders and prep-script json lists)."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avss.data.collate import collate_batch
from avss.data.lrs2_mix import LRS2MixDataset, parse_lrs2_name, scan_lrs2_mix
from avss.io.errors import InputError

SR = 16000
NAME1 = "6360322579951237696_00004_3.28669_6335305254315087182_00057_-3.28669"
NAME2 = "5999202588566552094_00010_0.06817_5954958412463581171_00037_-0.06817"


def make_tree(tmp_path: Path, split="tt", names=(NAME1, NAME2), n=3200):
    root, mouths = tmp_path / "audio", tmp_path / "mouths"
    mouths.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        s1 = (0.3 * np.sin(np.arange(n) * 0.05 * (i + 1))).astype(np.float32)
        s2 = (0.2 * np.sin(np.arange(n) * 0.11 * (i + 1))).astype(np.float32)
        for sub, audio in (("mix", s1 + s2), ("s1", s1), ("s2", s2)):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / split / sub / f"{name}.wav"), audio, SR, subtype="FLOAT")
        id1, id2 = parse_lrs2_name(name)
        np.savez(mouths / f"{id1}.npz", data=np.full((5, 96, 96), 10 * i + 1, np.uint8))
        np.savez(mouths / f"{id2}.npz", data=np.full((5, 96, 96), 10 * i + 2, np.uint8))
    return root, mouths


def test_six_token_names():
    assert parse_lrs2_name(NAME1) == ("6360322579951237696_00004", "6335305254315087182_00057")
    assert parse_lrs2_name("a_b_c_d_e") is None
    assert parse_lrs2_name("a_b__d_e_f") is None
    assert parse_lrs2_name("a_b_c_d_e_f_g") is None


def test_folder_tree_loading(tmp_path):
    root, mouths = make_tree(tmp_path)
    ds = LRS2MixDataset(root, "tt", mouths)
    assert len(ds) == 2 and [e.name for e in ds.entries] == sorted([NAME1, NAME2])
    by_name = {ds[i]["name"]: ds[i] for i in range(len(ds))}
    item = by_name[NAME1]
    assert item["mix"].shape == (3200,) and item["sources"].shape == (2, 3200) and item["has_refs"]
    assert item["orig_sample_rate"] == SR and item["length"] == 3200
    torch.testing.assert_close(item["sources"].sum(0), item["mix"], atol=1e-6, rtol=0)
    # T = 3200 samples at 16 kHz = 0.2 s = 5 frames; s1 mouth is tokens 0-1, s2 mouth tokens 3-4
    assert item["mouths"].shape == (2, 5, 96, 96)
    assert int(item["mouths"][0, 0, 0, 0]) == 1 and int(item["mouths"][1, 0, 0, 0]) == 2
    assert int(by_name[NAME2]["mouths"][1, 0, 0, 0]) == 12

    batch = collate_batch([ds[0], ds[1]])
    assert batch["mouths"].shape == (2, 2, 5, 96, 96) and batch["lengths"].tolist() == [3200, 3200]

    assert len(LRS2MixDataset(root, "test", mouths)) == 2  # split aliases
    audio_only = LRS2MixDataset(root, "tt", None)
    assert "mouths" not in audio_only[0] and audio_only[0]["has_refs"]
    resampled = LRS2MixDataset(root, "tt", mouths, sample_rate=8000, n_src=1)
    assert len(resampled) == 4 and resampled[1]["mix"].shape == (1600,)
    assert resampled[1]["name"].endswith("_s2") and resampled[1]["mouths"].shape == (1, 5, 96, 96)


def test_missing_mouth_and_reference(tmp_path):
    root, mouths = make_tree(tmp_path)
    (mouths / "6335305254315087182_00057.npz").unlink()
    (root / "tt" / "s1" / f"{NAME2}.wav").unlink()
    entries = {e.name: e for e in scan_lrs2_mix(root, "tt", mouths)}
    assert entries[NAME1].mouths[1] is None and entries[NAME1].mouths[0] is not None
    assert entries[NAME2].refs[0] is None and entries[NAME2].refs[1] is not None
    ds = LRS2MixDataset(root, "tt", mouths, require_refs=True)
    assert [ds[i]["name"] for i in range(len(ds))] == [NAME1]
    assert "mouths" not in ds[0]


def test_input_errors(tmp_path):
    root, mouths = make_tree(tmp_path)
    with pytest.raises(InputError, match="split directory not found"):
        LRS2MixDataset(root, "tr", mouths)
    with pytest.raises(InputError, match="mouth directory not found"):
        LRS2MixDataset(root, "tt", tmp_path / "nowhere")
    empty = tmp_path / "empty_mouths"
    empty.mkdir()
    with pytest.raises(InputError, match="no mouth files found") as err:
        LRS2MixDataset(root, "tt", empty)
    assert err.value.path == str(empty)
    (root / "cv" / "mix").mkdir(parents=True)
    with pytest.raises(InputError, match="no mixtures found"):
        LRS2MixDataset(root, "cv", mouths)
    with pytest.raises(ValueError):
        LRS2MixDataset(root, "dev", mouths)


def write_json_lists(split_dir: Path, root: Path, mouths: Path, names, prefix=None):
    """Lists as the prep scripts write them; `prefix` replaces the folders (paths from another machine)."""
    def where(sub, name):
        return str((Path(prefix) / sub if prefix else root / "tt" / sub) / f"{name}.wav")

    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "mix.json").write_text(json.dumps([[where("mix", n), 3200] for n in names]))
    for k in (0, 1):
        rows = []
        for n in names:
            mouth = Path(prefix or mouths) / f"{parse_lrs2_name(n)[k]}.npz"
            rows.append([where(f"s{k + 1}", n), str(mouth if prefix else mouths / mouth.name), 3200])
        (split_dir / f"s{k + 1}.json").write_text(json.dumps(rows))


def test_json_lists(tmp_path):
    root, mouths = make_tree(tmp_path)
    lists = tmp_path / "lists"
    write_json_lists(lists / "tt", root, mouths, [NAME2, NAME1])
    (root / "tt" / "mix" / "unlisted_a_1_b_2_c.wav").write_bytes(b"")  # json wins over the folder listing
    ds = LRS2MixDataset(lists, "tt", None)  # mouths found through the paths in s1/s2.json
    assert [e.name for e in ds.entries] == sorted([NAME1, NAME2])
    item = ds[ds.entries.index(next(e for e in ds.entries if e.name == NAME1))]
    assert item["mouths"].shape == (2, 5, 96, 96) and int(item["mouths"][1, 0, 0, 0]) == 2
    assert item["has_refs"]

    # paths of another machine: looked up by file name under ROOT/<split>/{mix,s1,s2} and the mouth dir
    write_json_lists(root / "tt", root, mouths, [NAME1, NAME2], prefix="/elsewhere/data")
    ds = LRS2MixDataset(root, "tt", mouths)
    assert all(e.has_refs and e.has_mouths for e in ds.entries)
    assert ds.entries[1].mix == root / "tt" / "mix" / f"{NAME1}.wav"

    (root / "tt" / "mix" / f"{NAME1}.wav").unlink()
    with pytest.raises(InputError, match="1 of 2 listed mixtures do not exist") as err:
        LRS2MixDataset(root, "tt", mouths)
    assert err.value.path == str(root / "tt" / "mix.json")
    (root / "tt" / "mix.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read json"):
        LRS2MixDataset(root, "tt", mouths)
    (root / "tt" / "mix.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(InputError, match="unexpected json format"):
        LRS2MixDataset(root, "tt", mouths)


def test_hydra_config_instantiates(tmp_path):
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    root, mouths = make_tree(tmp_path, split="cv")
    path = Path(__file__).resolve().parents[1] / "configs" / "data" / "lrs2_2mix.yaml"
    cfg = OmegaConf.create({"model": {"sample_rate": SR}, "data": OmegaConf.load(path)})
    cfg.data.train.root, cfg.data.train.mouth_dir = str(root), str(mouths)
    val = hydra_utils.instantiate(cfg.data.val)
    assert isinstance(val, LRS2MixDataset) and val.split == "cv" and len(val) == 2
    assert val[0]["mouths"].shape == (2, 5, 96, 96)
