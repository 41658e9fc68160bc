"""Build everything from a Hydra config and fit. `train.py` is a thin wrapper around `train(cfg)`."""
from __future__ import annotations

import logging

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avss.training.module import SeparationTask

log = logging.getLogger("avss.train")


def train(cfg: DictConfig) -> dict:
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    model = instantiate(cfg.model)
    task = SeparationTask(model, loss=cfg.loss, optimizer=cfg.optimizer, scheduler=cfg.get("scheduler"),
                          scheduler_monitor=cfg.get("scheduler_monitor", "val/loss"))
    datamodule = instantiate(cfg.data)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c is not None]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %.3f M parameters", type(model).__name__, n_params / 1e6)
    trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
