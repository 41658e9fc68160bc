"""Cached lip embeddings: extraction (library + entry point), the dataset option, and training from the cache."""
import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from avss.data.collate import collate_batch
from avss.data.custom_dir import CustomDirDataset
from avss.data.datamodule import SeparationDataModule
from avss.data.mouths import num_frames
from avss.data.visual_cache import (cache_root, embed_frames, extract_directory, frontend_tag, load_cached,
                                    main as extract_main)
from avss.io.errors import InputError
from avss.models import AVConvTasNet
from avss.nn.lip_resnet import LRWResNet18Frontend
from avss.nn.visual import SmallLipFrontend
from avss.training.module import SeparationTask

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")
SR = 16000
N = 4000  # 0.25 s -> 7 video frames


def frames(t: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 96, 96), dtype=np.uint8)


def make_folder(root: Path, names=("a_b", "c_d"), t=num_frames(N, SR), n=N) -> Path:
    """Course layout: mixtures of two tones with references and one mouth file per speaker."""
    for i, name in enumerate(names):
        tt = np.arange(n) / SR
        s1 = (0.3 * np.sin(2 * np.pi * (300 + 40 * i) * tt)).astype(np.float32)
        s2 = (0.2 * np.sign(np.sin(2 * np.pi * (37 + 5 * i) * tt))).astype(np.float32)
        for folder, audio in (("mix", s1 + s2), ("s1", s1), ("s2", s2)):
            (root / "audio" / folder).mkdir(parents=True, exist_ok=True)
            sf.write(root / "audio" / folder / f"{name}.wav", audio, SR)
        for k, speaker in enumerate(name.split("_")):
            (root / "mouths").mkdir(parents=True, exist_ok=True)
            np.savez(root / "mouths" / f"{speaker}.npz", data=frames(t, seed=10 * i + k))
    return root


def lrw_checkpoint(path: Path, seed: int = 0) -> tuple[Path, dict]:
    torch.manual_seed(seed)
    state = LRWResNet18Frontend(activation="swish").state_dict()
    torch.save({"model_state_dict": state}, path)
    return path, state


# ---------------------------------------------------------------------------------------------- computing
@pytest.mark.parametrize("kind", ["small", "lrw"])
def test_pieces_of_frames_give_the_same_embeddings_as_one_pass(kind, one_thread):
    torch.manual_seed(0)
    frontend = SmallLipFrontend(emb_dim=8, width=4) if kind == "small" else LRWResNet18Frontend(activation="swish")
    clip = frames(5 if kind == "lrw" else 11, seed=1)
    whole = embed_frames(frontend, clip, batch_frames=100)
    assert whole.shape == (clip.shape[0], frontend.emb_dim) and whole.dtype == np.float32
    pieces = embed_frames(frontend, clip, batch_frames=2)
    np.testing.assert_allclose(pieces, whole, rtol=1e-4, atol=1e-5)
    assert frontend.training  # the caller's mode is restored


def test_tag_names_the_frontend_and_its_weights():
    torch.manual_seed(0)
    a = SmallLipFrontend(emb_dim=8, width=4)
    tag = frontend_tag(a)
    assert tag.startswith("small-d8-") and tag == frontend_tag(a)
    b = SmallLipFrontend(emb_dim=8, width=4)
    b.load_state_dict(a.state_dict())
    assert frontend_tag(b) == tag
    with torch.no_grad():
        b.stem[1].running_mean += 0.1  # batch-norm statistics change the output, so the tag
    assert frontend_tag(b) != tag
    b.load_state_dict(a.state_dict())
    b.stem[1].num_batches_tracked += 5  # a counter that does not
    assert frontend_tag(b) == tag


def test_extract_directory_caches_skips_and_reports_bad_files(tmp_path, one_thread):
    torch.manual_seed(0)
    root = make_folder(tmp_path / "data")
    (root / "mouths" / "bad.npz").write_bytes(b"garbage")
    np.savez(root / "mouths" / "empty.npz", data=np.zeros((0, 96, 96), np.uint8))
    frontend = SmallLipFrontend(emb_dim=8, width=4)
    lines = []
    report = extract_directory(frontend, root / "mouths", progress=False, log=lines.append)
    out = cache_root(root / "mouths") / report.tag
    assert out == root / "mouths_emb" / report.tag
    assert sorted(Path(p).stem for p in report.done) == ["a", "b", "c", "d"]
    assert sorted(Path(p).stem for p, _ in report.failed) == ["bad", "empty"]
    assert len(lines) == 2 and all("\n" not in line and "mouths/" in line for line in lines)
    cached = load_cached(out / "a.npy")
    assert cached.shape == (num_frames(N, SR), 8) and cached.dtype == np.float32
    np.testing.assert_allclose(cached, embed_frames(frontend, np.load(root / "mouths" / "a.npz")["data"]),
                               rtol=1e-5, atol=1e-6)
    assert (out / "frontend.json").is_file()
    assert not list(out.glob(".*"))  # no temporary files left

    again = extract_directory(frontend, root / "mouths", progress=False, log=lines.append)
    assert again.done == [] and len(again.skipped) == 4
    mouth = root / "mouths" / "c.npz"
    os.utime(mouth, ns=(mouth.stat().st_atime_ns, (out / "c.npy").stat().st_mtime_ns + 10**9))  # edited later
    third = extract_directory(frontend, root / "mouths", progress=False, log=lines.append)
    assert [Path(p).stem for p in third.done] == ["c"]


# ---------------------------------------------------------------------------------------------- entry point
def run_extract(overrides):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("extract_visual_features", overrides=overrides)
    return extract_main(cfg)


def test_entry_point_with_lip_frontend_config_and_with_model_checkpoint(tmp_path, capsys, one_thread):
    root = make_folder(tmp_path / "data", names=("a_b",), t=3)
    path, _ = lrw_checkpoint(tmp_path / "lrw.pth.tar")
    frontend_cfg = f"lip_frontend={{kind:lrw_resnet18,activation:swish,checkpoint:'{path}'}}"
    assert run_extract([f"data_dir={root}", frontend_cfg, "progress=false"]) == 0
    printed = capsys.readouterr().out
    (tag_dir,) = (root / "mouths_emb").iterdir()
    assert tag_dir.name.startswith("lrw_resnet18-d512-") and f"data.train.visual_cache={tag_dir.name}" in printed
    assert load_cached(tag_dir / "b.npy").shape == (3, 512)

    # an AV checkpoint whose frontend holds the same weights shares the cache: nothing is recomputed
    model = AVConvTasNet(n_filters=16, kernel_size=32, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=2,
                         visual_dim=512, lip_frontend={"kind": "lrw_resnet18", "activation": "swish",
                                                      "checkpoint": str(path)})
    model.save_pretrained(tmp_path / "av.pt")
    path.unlink()  # the avss checkpoint carries the frontend's weights itself
    (root / "mouths" / "broken.npz").write_bytes(b"x")
    assert run_extract([f"data_dir={root}", f"checkpoint={tmp_path / 'av.pt'}", "progress=false"]) == 1
    captured = capsys.readouterr()
    assert "cached 0 lip embeddings (2 already up to date)" in captured.out
    assert "broken.npz: cannot read mouth file" in captured.err and "Traceback" not in captured.err


def test_entry_point_argument_errors(tmp_path, capsys):
    root = make_folder(tmp_path / "data", names=("a_b",), t=2)
    assert run_extract([f"data_dir={root}"]) == 2
    assert "exactly one of checkpoint" in capsys.readouterr().err
    assert run_extract([f"data_dir={root}", "lip_frontend={kind:lrw_resnet18}"]) == 2
    assert "weights would be random" in capsys.readouterr().err
    missing = f"lip_frontend={{kind:lrw_resnet18,checkpoint:'{tmp_path / 'none.pth.tar'}'}}"
    assert run_extract([f"data_dir={root}", missing]) == 2
    assert "lip-reading checkpoint not found" in capsys.readouterr().err
    assert run_extract([f"data_dir={tmp_path / 'nowhere'}", f"checkpoint={tmp_path / 'm.pt'}"]) == 2
    assert "mouth directory not found" in capsys.readouterr().err
    assert run_extract([f"data_dir={root}", f"checkpoint={tmp_path / 'm.pt'}"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- dataset
def test_dataset_yields_cached_embeddings_and_rejects_stale_caches(tmp_path, one_thread):
    torch.manual_seed(0)
    root = make_folder(tmp_path / "data", t=12)
    frontend = SmallLipFrontend(emb_dim=8, width=4)
    tag = extract_directory(frontend, root / "mouths", progress=False).tag
    t = num_frames(N, SR)
    item = CustomDirDataset(root, SR, visual_cache=tag)[0]
    assert item["mouths"].dtype == torch.float32 and item["mouths"].shape == (2, t, 8)
    expected = load_cached(root / "mouths_emb" / tag / "b.npy")[:t]
    np.testing.assert_array_equal(item["mouths"][1].numpy(), expected)
    by_path = CustomDirDataset(root, SR, visual_cache=str(root / "mouths_emb" / tag), n_src=1)
    assert by_path[1]["mouths"].shape == (1, t, 8)
    cropped = CustomDirDataset(root, SR, segment=0.125, visual_cache=tag)[0]
    assert cropped["mouths"].shape == (2, num_frames(2000, SR), 8)

    short = CustomDirDataset(root, SR, visual_cache=tag)[1]  # collate pads [S, T, D] by repeating the last frame
    short["mouths"] = short["mouths"][:, :3]
    batch = collate_batch([item, short])
    assert batch["mouths"].shape == (2, 2, t, 8)
    assert torch.equal(batch["mouths"][1, :, 3], batch["mouths"][1, :, 2])

    with pytest.raises(InputError, match="no up-to-date cached lip embeddings"):
        CustomDirDataset(root, SR, visual_cache="other-tag")
    mouth = root / "mouths" / "d.npz"
    os.utime(mouth, ns=(mouth.stat().st_atime_ns, mouth.stat().st_mtime_ns + 10**10))
    with pytest.raises(InputError, match=r"1 of 4 mouth files .*d\.npy"):
        CustomDirDataset(root, SR, visual_cache=tag)


def test_custom_dir_config_passes_the_cache_option(tmp_path):
    root = make_folder(tmp_path / "data", t=7)
    tag = extract_directory(SmallLipFrontend(emb_dim=8, width=4), root / "mouths", progress=False).tag
    overrides = ["data=custom_dir", f"data.train.data_dir={root}", f"data.val.data_dir={root}",
                 f"data.train.visual_cache={tag}", "data.train.require_mouths=true"]
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    datamodule = instantiate(cfg.data)
    assert datamodule.val_set.visual_cache == tag
    assert datamodule.train_set[0]["mouths"].dtype == torch.float32


# ---------------------------------------------------------------------------------------------- training
def test_training_from_cached_embeddings_leaves_the_frozen_frontend_unchanged(tmp_path, one_thread):
    root = make_folder(tmp_path / "data", names=("a_b", "c_d"))
    path, state = lrw_checkpoint(tmp_path / "lrw.pth.tar", seed=3)
    torch.manual_seed(0)
    model = AVConvTasNet(n_filters=16, kernel_size=32, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=2,
                         visual_dim=512, lip_frontend={"kind": "lrw_resnet18", "activation": "swish",
                                                      "checkpoint": str(path)})
    tag = extract_directory(model.lip_frontend, root / "mouths", progress=False).tag
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dataset = CustomDirDataset(root, SR, visual_cache=tag, require_mouths=True, require_refs=True)
    task = SeparationTask(model, optimizer={"_target_": "torch.optim.Adam", "lr": 1e-2})
    mix, inputs, target = task.prepare(collate_batch([dataset[0], dataset[1]]))
    assert inputs["mouths"].shape == (4, num_frames(N, SR), 512) and inputs["mouths"].dtype == torch.float32

    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(task, datamodule=SeparationDataModule(dataset, None, batch_size=2))
    assert trainer.global_step == 2
    after = model.state_dict()
    frontend_keys = [k for k in after if k.startswith("lip_frontend.")]
    assert len(frontend_keys) == 120
    assert all(torch.equal(after[k], before[k]) for k in frontend_keys)
    assert all(torch.equal(after[f"lip_frontend.{k}"], v) for k, v in state.items())
    changed = [k for k in after if k.startswith("masker.") and not torch.equal(after[k], before[k])]
    assert changed  # the separator itself did train
