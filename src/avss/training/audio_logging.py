"""Send audio examples to whichever Lightning logger is configured (W&B, Comet, TensorBoard, or CSV as wav files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avss.io.audio import save_audio


def log_audio(logger, tag: str, audio: np.ndarray, sample_rate: int, step: int) -> None:
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio / max(1.0, float(np.abs(audio).max()))
    kind = type(logger).__name__
    if kind == "WandbLogger":
        import wandb

        logger.experiment.log({tag: wandb.Audio(audio, sample_rate=sample_rate), "trainer/global_step": step})
    elif kind == "CometLogger":
        logger.experiment.log_audio(audio, sample_rate=sample_rate, file_name=f"{tag.replace('/', '_')}.wav", step=step)
    elif kind == "TensorBoardLogger":
        logger.experiment.add_audio(tag, audio[None], step, sample_rate=sample_rate)
    elif getattr(logger, "log_dir", None):
        save_audio(Path(logger.log_dir) / "audio" / f"step{step:07d}" / f"{tag.replace('/', '_')}.wav", audio, sample_rate)
