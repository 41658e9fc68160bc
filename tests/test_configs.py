"""Every training recipe composes, and the scheduler group builds the schedule it names."""
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def train_config(*overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose("train", overrides=list(overrides))


def schedule(cfg):
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    return instantiate(cfg.scheduler, optimizer=optimizer)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_a_buildable_schedule(experiment):
    cfg = train_config(f"experiment={experiment}")
    assert cfg.task_name and cfg.model._target_.startswith("avss.models.")
    assert isinstance(schedule(cfg), torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau)


def test_scheduler_group_switches_between_plateau_and_cosine():
    assert isinstance(schedule(train_config()), torch.optim.lr_scheduler.ReduceLROnPlateau)
    cosine = schedule(train_config("scheduler=cosine", "scheduler.T_max=3", "scheduler.eta_min=0.0"))
    assert isinstance(cosine, torch.optim.lr_scheduler.CosineAnnealingLR) and cosine.T_max == 3
    for _ in range(3):
        cosine.optimizer.step()
        cosine.step()
    assert cosine.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # at the end of the cycle: eta_min


def test_refiner_recipe_is_the_run_that_made_the_refined_checkpoint():
    cfg = train_config("experiment=sudormrf_small_refined_dm")
    assert cfg.model._target_ == "avss.models.Refined" and cfg.model.freeze_base
    assert Path(CONFIGS.parent, cfg.model.base_weights).is_file()  # the frozen base ships with the repo
    assert (cfg.scheduler.T_max, cfg.data.train.length, cfg.data.train.segment) == (12, 2400, 4.0)
    assert "ema" in cfg.callbacks


CYCLE_OVERRIDES = ["experiment=sudormrf_small_dm", "model.blocks=16", "trainer=ddp", "trainer.strategy=ddp",
                   "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
                   "trainer.sync_batchnorm=false", "threads=1", "data.batch_size=2", "data.train.segment=4.0",
                   "callbacks=ema", "optimizer.lr=8e-5", "scheduler=cosine", "scheduler.T_max=12",
                   "scheduler.eta_min=1.0e-5", "trainer.max_epochs=12", "task_name=sudormrf16_dm"]


def test_16_block_recipe_is_the_command_line_of_the_16_block_models_last_cycle():
    from omegaconf import OmegaConf
    recipe = OmegaConf.to_container(train_config("experiment=sudormrf16_dm"))
    assert recipe == OmegaConf.to_container(train_config(*CYCLE_OVERRIDES))
    assert recipe["model"]["blocks"] == 16 and recipe["trainer"]["max_epochs"] == recipe["scheduler"]["T_max"]


def test_the_trained_cascade_and_its_first_stage_have_the_architectures_of_their_configs():
    from avss.models.base import load_trained_weights
    from avss.utils.weight_files import skip_weight_files
    first = instantiate(train_config("model=sudormrf_small_16").model)
    assert first.config["blocks"] == 16
    load_trained_weights(first, CONFIGS.parent / "checkpoints" / "sudormrf16_grown.pt")  # raises on any difference
    with skip_weight_files():
        cascade = instantiate(train_config("model=cascade_sudormrf16").model)
    load_trained_weights(cascade, CONFIGS.parent / "checkpoints" / "cascade16.pt")
    # its frozen first stage is that file up to the rounding of the EMA it was trained with (before ExactEMA)
    torch.testing.assert_close(cascade.base.state_dict(), first.state_dict(), rtol=0, atol=2e-5)


def test_the_magnitude_band_split_recipe_differs_from_band_split_dm_only_in_its_input_planes():
    from omegaconf import OmegaConf

    magnitude = OmegaConf.to_container(train_config("experiment=band_split_magnitude_dm"))
    complex_planes = OmegaConf.to_container(train_config("experiment=band_split_dm"))
    assert (magnitude["model"]["features"], complex_planes["model"]["features"]) == ("magnitude", "complex")
    for cfg in (magnitude, complex_planes):
        del cfg["model"]["features"], cfg["task_name"]
    assert magnitude == complex_planes


def test_the_synthetic_talker_recipe_is_the_16_block_cycle_plus_one_corpus():
    from omegaconf import OmegaConf

    tts = OmegaConf.to_container(train_config("experiment=sudormrf16_tts_dm"))
    plain = OmegaConf.to_container(train_config("experiment=sudormrf16_dm"))
    added = tts["data_corpora"].pop()
    assert added == {"path": "data/tts_corpus", "speaker_regex": "^([^-]+)-", "weight": 0.4}
    del tts["task_name"], plain["task_name"]
    assert tts == plain
