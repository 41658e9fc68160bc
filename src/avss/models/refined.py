"""A trained separator followed by a learned spectral refiner (avss.nn.spectral_refiner): a second stage that
is cheap to train on a CPU because the separator stays frozen and the refiner runs at 31 frames per second.

`Refined(base=<model config>, base_weights=PATH)` builds the separator from its config and, when
`base_weights` is given, loads its trained weights (not when a saved `Refined` checkpoint, which holds them,
is loaded). The separator's tracks are made to sum to the mixture (least-squares gains, then an equal share
of the residual, as in test-time mixture consistency) before the refiner sees them.
"""
from __future__ import annotations

import torch

from avss.models.base import Separator, build_from_config, load_trained_weights, plain_config
from avss.nn.consistency import consistent_tracks
from avss.nn.spectral_refiner import SpectralRefiner
from avss.utils.weight_files import skipping_weight_files


class Refined(Separator):
    def __init__(self, base: dict, refiner: dict | None = None, base_weights: str | None = None,
                 sample_rate: int | None = None, freeze_base: bool = True):
        super().__init__()
        self.base = build_from_config(plain_config(base))
        if base_weights and not skipping_weight_files():
            load_trained_weights(self.base, base_weights, "base_weights", "`base`", "give its config as `base`")
        if sample_rate is not None and sample_rate != self.base.sample_rate:
            raise ValueError(f"sample_rate={sample_rate} differs from the base model's {self.base.sample_rate}")
        if not self.base.separates_mono_audio:
            raise ValueError("Refined needs a single-channel, audio-only separation model as its base")
        self.sample_rate, self.n_src = self.base.sample_rate, self.base.n_src
        self.refiner = SpectralRefiner(n_src=self.n_src, **(plain_config(refiner) or {}))
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

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        if self.freeze_base:
            with torch.no_grad():
                est = self.base(mix)
        else:
            est = self.base(mix)
        return self.refiner(mix, consistent_tracks(est[..., :mix.shape[-1]], mix))
