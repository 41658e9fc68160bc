"""What the two-stage models (Refined, Cascade) share: a trained first-stage separator, built from its config,
loaded from `base_weights` and optionally frozen."""
from __future__ import annotations

import torch

from avss.models.base import Separator, build_from_config, load_trained_weights, plain_config
from avss.utils.weight_files import skipping_weight_files


class OnTrainedBase(Separator):
    training_options = ("base_weights", "freeze_base")  # e.g. fine-tune a frozen-base checkpoint jointly

    def setup_base(self, base: dict, base_weights: str | None, sample_rate: int | None, freeze_base: bool) -> None:
        """Build `self.base` from its config and load `base_weights` (not when a saved two-stage checkpoint,
        which holds them, is being rebuilt); `freeze_base` keeps it fixed and in inference mode."""
        self.base = build_from_config(plain_config(base))
        if base_weights and not skipping_weight_files():
            load_trained_weights(self.base, base_weights, "base_weights", "`base`", "give its config as `base`")
        if sample_rate is not None and sample_rate != self.base.sample_rate:
            raise ValueError(f"sample_rate={sample_rate} differs from the base model's {self.base.sample_rate}")
        self.sample_rate, self.n_src = self.base.sample_rate, self.base.n_src
        self.freeze_base = freeze_base
        if freeze_base:
            self.base.requires_grad_(False)

    @property
    def frame_hop(self) -> int:
        return self.base.frame_hop

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_base:  # a frozen base keeps its inference behaviour (norm statistics, dropout)
            self.base.eval()
        return self

    def first_tracks(self, mix: torch.Tensor, padded: bool = False, **padded_inputs) -> torch.Tensor:
        """The first stage's tracks [B, S, L] for a mixture [B, L] (without gradients when it is frozen);
        `padded`: `mix` is already padded to the base's frames (its `separate_padded`, for export, which also
        gets `padded_inputs`)."""
        run = self.base.separate_padded if padded else self.base
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_base):
            return run(mix, **padded_inputs)
