"""The LightningModule that trains any `Separator`: owns the loss, validation metrics, optimiser and logging.

Task modes (from the model): "separation" = mix -> n_src sources with PIT; "extraction" = mix + one speaker's
mouths -> that speaker, run once per speaker of each mixture (how the audio-visual models are trained).
"""
from __future__ import annotations

import lightning as L
import torch
from hydra.utils import instantiate

from avss.losses import SeparationLoss, si_snr
from avss.models.base import Separator, plain_config
from avss.nn.consistency import consistent_tracks
from avss.training.audio_logging import log_audio


class SeparationTask(L.LightningModule):
    def __init__(self, model: Separator, loss: str = "si_snr", optimizer: dict | None = None,
                 scheduler: dict | None = None,
                 scheduler_monitor: str = "val/loss", n_audio_examples: int = 2,
                 mixture_consistency: bool = False):
        super().__init__()
        if mixture_consistency and not model.separates_mono_audio:
            raise ValueError(f"mixture_consistency=true needs a separator of mono audio; {type(model).__name__} is "
                             "not one (set mixture_consistency=false)")
        self.model = model
        self.optimizer_cfg, self.scheduler_cfg = plain_config(optimizer), plain_config(scheduler)
        self.save_hyperparameters({"model_config": model.config, "loss": loss,
                                   "optimizer": self.optimizer_cfg, "scheduler": self.scheduler_cfg,
                                   "scheduler_monitor": scheduler_monitor,
                                   "mixture_consistency": mixture_consistency})
        self.scheduler_monitor, self.n_audio_examples = scheduler_monitor, n_audio_examples
        self.criterion = SeparationLoss(loss, pit=model.task == "separation")
        self.mixture_consistency = mixture_consistency
        self.audio_seconds_seen = 0.0

    # ---- batches: dataset dicts -> model inputs/targets ------------------------------------------------------
    def prepare(self, batch: dict) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """Return (mix, model keyword inputs, target) shaped for the model's task.

        Extraction models run once per speaker: the mixture is repeated and each speaker's mouths (and any
        `model.extra_inputs`, e.g. an enrolment utterance) select that speaker's source as the target.
        """
        mix, sources = batch["mix"], batch["sources"]
        wanted = (("mouths",) if self.model.needs_visual else ()) + tuple(self.model.extra_inputs)
        missing = [k for k in wanted if k not in batch]
        if missing:
            raise ValueError(f"{type(self.model).__name__} needs {missing} in the batch; enable them in the data "
                             "config (e.g. data.train.mouths=true)")
        if self.model.task == "extraction":
            n_spk = sources.shape[1]
            inputs = {k: batch[k].flatten(0, 1) for k in wanted}
            return mix.repeat_interleave(n_spk, dim=0), inputs, sources.flatten(0, 1).unsqueeze(1)
        return mix, {k: batch[k] for k in wanted}, sources

    def forward(self, mix, **inputs):
        """The model's tracks; with `mixture_consistency`, made to sum to the mixture (as the test-time refinement
        does), so that the loss and validation score what inference will use."""
        est = self.model(mix, **inputs)
        return consistent_tracks(est, mix) if self.mixture_consistency else est

    def training_step(self, batch, batch_idx):
        mix, inputs, target = self.prepare(batch)
        est = self(mix, **inputs)
        loss, _ = self.criterion(est, target)
        self.log("train/loss", loss, prog_bar=True, batch_size=mix.shape[0])
        self.count_audio(batch)
        return loss

    def count_audio(self, batch: dict) -> None:
        """Add this step's mixture audio over all processes: under DDP every process steps through a batch of the
        same size (incomplete batches are dropped), so the total is this batch times the process count."""
        seconds = batch["mix"].shape[0] * batch["mix"].shape[-1] / self.model.sample_rate
        self.audio_seconds_seen += seconds * (self._trainer.world_size if self._trainer is not None else 1)

    def validation_step(self, batch, batch_idx):
        mix, inputs, target = self.prepare(batch)
        est = self(mix, **inputs)
        loss, est = self.criterion(est, target)
        lengths = batch.get("lengths")
        if lengths is not None and self.model.task == "extraction":
            lengths = lengths.repeat_interleave(target.shape[0] // lengths.shape[0])
        improvements = []
        for i in range(est.shape[0]):  # per item, over its valid samples only
            n = int(lengths[i]) if lengths is not None else est.shape[-1]
            ref = target[i, :, :n]
            mixture = (mix[i, 0] if mix.dim() == 3 else mix[i])[:n]  # multi-channel: the reference microphone
            improvements.append((si_snr(est[i, :, :n], ref) - si_snr(mixture.expand_as(ref), ref)).mean())
        si_snri = torch.stack(improvements).mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=mix.shape[0])
        self.log("val/si_snri", si_snri, prog_bar=True, sync_dist=True, batch_size=mix.shape[0])
        if batch_idx == 0 and self.logger is not None and self.global_rank == 0:
            self._log_examples(mix, est, target)
        return loss

    def _log_examples(self, mix, est, target):
        sr = self.model.sample_rate
        for i in range(min(self.n_audio_examples, est.shape[0])):
            log_audio(self.logger, f"val_audio/{i}_mix", mix[i].reshape(-1).cpu().numpy(), sr, self.global_step)
            for s in range(est.shape[1]):
                log_audio(self.logger, f"val_audio/{i}_est{s + 1}", est[i, s].cpu().numpy(), sr, self.global_step)
                log_audio(self.logger, f"val_audio/{i}_ref{s + 1}", target[i, s].cpu().numpy(), sr, self.global_step)

    # ---- mixture audio trained on (all processes), kept across resumes; the learning curve derives throughput --
    def on_save_checkpoint(self, checkpoint):
        checkpoint["audio_seconds_seen"] = self.audio_seconds_seen

    def on_load_checkpoint(self, checkpoint):
        self.audio_seconds_seen = checkpoint.get("audio_seconds_seen", 0.0)

    # ---- optimisation ------------------------------------------------------------------------------------
    def configure_optimizers(self):
        """`optimizer`/`scheduler` are Hydra `_target_` dicts, e.g. {_target_: torch.optim.Adam, lr: 1e-3}."""
        optimizer_cfg = self.optimizer_cfg or {"_target_": "torch.optim.Adam", "lr": 1e-3}
        optimizer = instantiate(optimizer_cfg, params=self.parameters())
        if not self.scheduler_cfg:
            return optimizer
        scheduler = instantiate(self.scheduler_cfg, optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.scheduler_monitor, "interval": "epoch"}}
