"""A trained separator followed by a learned spectral refiner (avss.nn.spectral_refiner): a second stage that
is cheap to train on a CPU because the separator stays frozen and the refiner runs at 31 frames per second.

`Refined(base=<model config>, base_weights=PATH)` builds the separator from its config and, when
`base_weights` is given, loads its trained weights (not when a saved `Refined` checkpoint, which holds them,
is loaded). The separator's tracks are made to sum to the mixture (least-squares gains, then an equal share
of the residual, as in test-time mixture consistency) before the refiner sees them.
"""
from __future__ import annotations

import torch

from avss.models.base import plain_config
from avss.models.staged import OnTrainedBase
from avss.nn.consistency import consistent_tracks
from avss.nn.spectral_refiner import SpectralRefiner


class Refined(OnTrainedBase):
    def __init__(self, base: dict, refiner: dict | None = None, base_weights: str | None = None,
                 sample_rate: int | None = None, freeze_base: bool = True):
        super().__init__()
        self.setup_base(base, base_weights, sample_rate, freeze_base)
        if not self.base.separates_mono_audio:
            raise ValueError("Refined needs a single-channel, audio-only separation model as its base")
        self.refiner = SpectralRefiner(n_src=self.n_src, **(plain_config(refiner) or {}))

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        return self.refiner(mix, consistent_tracks(self.first_tracks(mix), mix))
