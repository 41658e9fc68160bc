"""Build everything from a Hydra config and fit. `train.py` is a thin wrapper around `train(cfg)`."""
from __future__ import annotations

import logging

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avss.models.base import load_trained_weights
from avss.training.module import SeparationTask

log = logging.getLogger("avss.train")


def train(cfg: DictConfig) -> dict:
    if cfg.get("init_from") and cfg.get("ckpt_path"):
        raise ValueError("set either ckpt_path (resume a run) or init_from (start from its weights), not both")
    if cfg.get("validate_only") and not cfg.get("init_from"):
        raise ValueError("validate_only=true scores trained weights: give them as init_from=PATH")
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    model = instantiate(cfg.model)
    if cfg.get("init_from"):
        load_trained_weights(model, cfg.init_from)
        log.info("weights from %s", cfg.init_from)
    task = SeparationTask(model, loss=cfg.loss, optimizer=cfg.optimizer, scheduler=cfg.get("scheduler"),
                          scheduler_monitor=cfg.get("scheduler_monitor", "val/loss"),
                          mixture_consistency=cfg.get("mixture_consistency", False))
    datamodule = instantiate(cfg.data)
    if cfg.get("validate_only"):
        trainer = instantiate(cfg.trainer, callbacks=[], logger=False, enable_checkpointing=False)
        (metrics,) = trainer.validate(task, datamodule=datamodule, verbose=False)
        log.info("validation of %s: %s", cfg.init_from, {k: round(float(v), 4) for k, v in metrics.items()})
        return {k: float(v) for k, v in metrics.items()}
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c is not None]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %.3f M parameters", type(model).__name__, n_params / 1e6)
    trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
