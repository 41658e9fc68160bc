"""Training: the loss goes down, Lightning checkpoints resume, and train.py runs from its Hydra config."""
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir

from avss.models import ConvTasNet, Separator
from avss.training.module import SeparationTask
from avss.training.run import train

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def tiny_model():
    return ConvTasNet(sample_rate=8000, n_filters=32, kernel_size=16, bottleneck=16, hidden=32, skip=16, blocks=3,
                      repeats=1)


def fixed_batch():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(4000) / 8000
    s1 = torch.sin(2 * torch.pi * 220 * t) * (torch.rand(1, generator=g) + 0.5)
    s2 = torch.sign(torch.sin(2 * torch.pi * 37 * t)) * 0.3
    sources = torch.stack([s1, s2])[None].repeat(2, 1, 1)
    return {"mix": sources.sum(1), "sources": sources, "lengths": torch.tensor([4000, 4000])}


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    task = SeparationTask(tiny_model(), optimizer={"_target_": "torch.optim.Adam", "lr": 3e-3})
    optimizer = task.configure_optimizers()
    batch = fixed_batch()
    losses = []
    for _ in range(40):
        loss = task.criterion(task.model(batch["mix"]), batch["sources"])[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 5.0  # at least 5 dB SI-SNR better


def test_mixture_consistency_makes_the_scored_tracks_sum_to_the_mixture():
    torch.manual_seed(0)
    batch = fixed_batch()
    plain = SeparationTask(tiny_model())
    consistent = SeparationTask(tiny_model(), mixture_consistency=True)
    consistent.model.load_state_dict(plain.model.state_dict())
    raw, made = plain(batch["mix"]), consistent(batch["mix"])
    assert (raw.sum(1) - batch["mix"]).abs().max() > 1e-2
    torch.testing.assert_close(made.sum(1), batch["mix"], rtol=0, atol=1e-4)
    loss = consistent.training_step(batch, 0)
    loss.backward()
    assert consistent.model.encoder.conv.weight.grad.abs().max() > 0
    assert consistent.hparams["mixture_consistency"] is True


def test_mixture_consistency_is_refused_for_models_that_do_not_separate_mono_audio():
    from avss.models import AVConvTasNet

    with pytest.raises(ValueError, match="mixture_consistency=true needs a separator of mono audio; AVConvTasNet"):
        SeparationTask(AVConvTasNet(sample_rate=8000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16,
                                    skip=8, blocks=2, repeats=2), mixture_consistency=True)


class ListData(torch.utils.data.Dataset):
    def __init__(self, n):
        self.batch = fixed_batch()
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"mix": self.batch["mix"][0], "sources": self.batch["sources"][0], "length": 4000, "name": str(i)}


def fit(tmp_path, max_epochs, ckpt_path=None):
    from avss.data.datamodule import SeparationDataModule

    torch.manual_seed(0)
    task = SeparationTask(tiny_model(), scheduler={"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1,
                                                   "gamma": 0.5}, scheduler_monitor="val/loss")
    dm = SeparationDataModule(ListData(4), ListData(2), batch_size=2)
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, callbacks=[ckpt],
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt_path)
    return trainer, task


def test_resume_restores_model_optimizer_scheduler_and_step(tmp_path):
    trainer, task = fit(tmp_path, max_epochs=2)
    assert trainer.global_step == 4
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    resumed, task2 = fit(tmp_path, max_epochs=3, ckpt_path=tmp_path / "last.ckpt")
    assert resumed.global_step == 6  # continued, not restarted
    assert resumed.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)
    assert saved["optimizer_states"][0]["state"]  # Adam moments were saved...
    assert saved["lr_schedulers"][0]["last_epoch"] == 2  # ...and the scheduler position
    assert saved["audio_seconds_seen"] == pytest.approx(4 * 2 * 0.5)  # 4 steps of 2 half-second mixtures
    assert task2.audio_seconds_seen == pytest.approx(6 * 2 * 0.5)  # the count continued across the resume
    # the Lightning checkpoint also loads as a plain separator
    model = Separator.from_pretrained(tmp_path / "last.ckpt")
    torch.testing.assert_close(model.state_dict(), task2.model.state_dict())


def test_audio_count_in_checkpoints_is_the_total_over_processes():
    """A run saved by 2 DDP processes and resumed by 1 (or 4) keeps the exact amount of audio trained on."""
    ten_seconds = {"mix": torch.zeros(2, 40000)}  # 2 x 5 s at 8 kHz, per process
    saver = SeparationTask(tiny_model())
    saver._trainer = SimpleNamespace(world_size=2)
    saver.count_audio(ten_seconds)
    checkpoint = {}
    saver.on_save_checkpoint(checkpoint)
    assert checkpoint["audio_seconds_seen"] == 20.0
    for world_size, after_one_more_step in ((1, 30.0), (4, 60.0)):
        loader = SeparationTask(tiny_model())
        loader._trainer = SimpleNamespace(world_size=world_size)
        loader.on_load_checkpoint(checkpoint)
        assert loader.audio_seconds_seen == 20.0
        loader.count_audio(ten_seconds)
        assert loader.audio_seconds_seen == after_one_more_step


def test_a_training_set_smaller_than_one_batch_is_an_error_not_a_silent_no_op():
    from avss.data.datamodule import SeparationDataModule

    with pytest.raises(ValueError, match=r"3 items, fewer than data.batch_size=4.*lower data.batch_size"):
        SeparationDataModule(ListData(3), ListData(2), batch_size=4).train_dataloader()
    assert len(SeparationDataModule(ListData(3), ListData(2), batch_size=3).train_dataloader()) == 1


def tiny_run_overrides(corpus, train_items: int = 4, val_items: int = 2) -> list[str]:
    """A 2-epoch train.py run of a tiny Conv-TasNet on `corpus` (batch 2 of 0.5-s items)."""
    corpora = f"[{{path: '{corpus}', speaker_regex: '^(\\d+)-', n_val_speakers: 2}}]"
    return [f"data_corpora={corpora}",
            "model.n_filters=16", "model.bottleneck=8", "model.hidden=16", "model.skip=8", "model.blocks=2",
            "model.repeats=1", f"data.train.length={train_items}", f"data.val.length={val_items}",
            "data.train.segment=0.5", "data.val.segment=0.5", "data.batch_size=2", "trainer.max_epochs=2"]


def train_tiny(corpus, run: Path, *extra: str) -> dict:
    overrides = tiny_run_overrides(corpus) + ["trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
                                              f"paths.output_dir={run}", *extra]
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return train(compose("train", overrides=overrides))


def test_resume_checkpoint_follows_every_validation_even_without_improvement(tiny_corpus, tmp_path, monkeypatch):
    """lr=0: the 2nd validation equals the 1st, so `best` saves nothing then; last.ckpt must still hold step 4."""
    monkeypatch.setenv("AVSS_CACHE", str(tmp_path / "cache"))
    train_tiny(tiny_corpus, tmp_path / "run", "optimizer.lr=0.0")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 4
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == ["best-epoch=000-step=0000002.ckpt"]


def test_train_entry_point_config_runs_end_to_end(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    metrics = train_tiny(tiny_corpus, run)
    assert "val/si_snri" in metrics
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4
    assert Separator.from_pretrained(run / "best_model.pt").sample_rate == 16000
    curve = (run / "learning_curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,epoch,train_hours") and len(curve) == 3


def test_init_from_starts_a_fresh_run_from_trained_weights(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSS_CACHE", str(tmp_path / "cache"))
    train_tiny(tiny_corpus, tmp_path / "first")
    trained = Separator.from_pretrained(tmp_path / "first" / "best_model.pt")
    # lr=0 keeps the loaded weights, so the second run must end exactly where the first one's best model was
    best = tmp_path / "first" / "best_model.pt"
    train_tiny(tiny_corpus, tmp_path / "second", f"init_from={best}", "optimizer.lr=0.0")
    last = tmp_path / "second" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4  # a new step count, not a resume
    torch.testing.assert_close(Separator.from_pretrained(last).state_dict(), trained.state_dict())
    with pytest.raises(ValueError, match="not both"):
        train_tiny(tiny_corpus, tmp_path / "third", f"init_from={best}",
                   f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}")


def test_ema_callbacks_validate_checkpoint_and_export_the_averaged_weights(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    train_tiny(tiny_corpus, run, "callbacks=ema", "callbacks.ema.decay=0.5", "callbacks.best.save_top_k=-1")
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    averaged, current = last["state_dict"], last["current_model_state"]
    assert any(not torch.equal(averaged[k], current[k]) for k in current)  # an average, not the last update
    # best_model.pt must hold the averaged weights of the epoch it names (every epoch's checkpoint is kept here)
    exported = torch.load(run / "best_model.pt", weights_only=False)
    step = exported["info"]["step"]
    (same_epoch,) = (run / "checkpoints").glob(f"best-*-step={step:07d}.ckpt")
    averaged_then = torch.load(same_epoch, weights_only=False)["state_dict"]
    torch.testing.assert_close({f"model.{k}": v for k, v in exported["state_dict"].items()},
                               {k: v for k, v in averaged_then.items() if k.startswith("model.")})


def test_exact_ema_keeps_frozen_weights_bit_identical_where_lightnings_update_drifts():
    from torch import nn
    from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

    from avss.training.callbacks import ExactEMA, exact_ema

    torch.manual_seed(0)
    module = nn.Linear(64, 64)
    module.weight.requires_grad_(False)
    exact = AveragedModel(module, avg_fn=exact_ema(0.999))
    lightning_update = AveragedModel(module, avg_fn=get_ema_avg_fn(0.999))
    for _ in range(200):
        with torch.no_grad():
            module.bias.add_(0.01)
        exact.update_parameters(module)
        lightning_update.update_parameters(module)
    assert torch.equal(exact.module.weight, module.weight)
    assert not torch.equal(lightning_update.module.weight, module.weight)  # the drift ExactEMA removes
    torch.testing.assert_close(exact.module.bias, lightning_update.module.bias)  # the same average otherwise
    assert (exact.module.bias - module.bias).abs().min() > 0.5  # an average that lags, not a copy
    assert ExactEMA(decay=0.9).state_key == "EMAWeightAveraging"  # runs saved with Lightning's EMA resume


def test_validate_only_scores_weights_as_training_validated_them_and_writes_nothing(tiny_corpus, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setenv("AVSS_CACHE", str(tmp_path / "cache"))
    train_tiny(tiny_corpus, tmp_path / "run")
    best = torch.load(tmp_path / "run" / "best_model.pt", weights_only=False)
    scored = tmp_path / "scored"
    metrics = train_tiny(tiny_corpus, scored, f"init_from={tmp_path / 'run' / 'best_model.pt'}", "validate_only=true")
    assert metrics["val/si_snri"] == pytest.approx(best["info"]["val/si_snri"], abs=1e-3)
    assert not (scored / "checkpoints").exists() and not (scored / "learning_curve.csv").exists()
    with pytest.raises(ValueError, match="init_from=PATH"):
        train_tiny(tiny_corpus, tmp_path / "nothing", "validate_only=true")


def test_init_from_names_the_architecture_mismatch(tmp_path):
    from avss.models.base import load_trained_weights

    tiny_model().save_pretrained(tmp_path / "small.pt")
    wider = ConvTasNet(sample_rate=8000, n_filters=48, kernel_size=16, bottleneck=16, hidden=32, skip=16, blocks=3,
                       repeats=1)
    with pytest.raises(ValueError, match=r"small\.pt.*\['n_filters'\].*ConvTasNet"):
        load_trained_weights(wider, tmp_path / "small.pt")


def test_train_py_runs_ddp_on_two_cpu_processes(tiny_corpus, tmp_path):
    """The multi-process path users take on GPUs, here with 2 CPU processes (gloo): every zoo model must train
    under DDP, including those that leave parameters unused in a step (Conv-TasNet's last residual conv)."""
    import csv
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    cmd = [sys.executable, "train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
           "trainer.precision=32-true", "trainer.sync_batchnorm=false", "threads=1",
           *tiny_run_overrides(tiny_corpus, train_items=8, val_items=4), "trainer.enable_progress_bar=false",
           f"hydra.run.dir={run}"]
    env = dict(os.environ, AVSS_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(cmd, cwd=Path(CONFIGS).parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # 8 items per epoch over 2 ranks with batch 2: 2 steps per epoch, each step 2 x 2 x 0.5 s of audio
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4
    rows = list(csv.DictReader((run / "learning_curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert float(rows[-1]["audio_hours_seen"]) * 3600 == pytest.approx(8.0, abs=1.0)
