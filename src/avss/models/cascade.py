"""A trained SuDoRM-RF run twice: the second pass also sees the first pass's tracks, and starts as its copy.

Why (issue #5): fine-tuning the shipped model has plateaued (README), and a separator that sees its own first
estimates can remove what leaked from one talker into the other's track (iterative refinement, as in SepIt,
Lutati et al. 2022). The second stage is a copy of the trained separator plus one 1x1 convolution that adds the
encoder frames of the first stage's tracks (normalised, as the mixture's are) to its bottleneck. That
convolution starts at zero, so the untrained cascade returns exactly the first stage's tracks, and training
starts from the trained model's score instead of from scratch. The tracks it sees are first made to sum to the mixture (mixture consistency), which removes their
arbitrary gains.

`Cascade(base=<SuDoRM-RF config>, base_weights=PATH)` loads the trained weights into both stages (not when a
saved `Cascade` checkpoint, which holds them, is loaded); `freeze_base` keeps the first stage fixed, which
also spares its backward pass.
"""
from __future__ import annotations

import torch
from torch import nn

from avss.models.base import build_from_config
from avss.models.staged import OnTrainedBase
from avss.models.sudormrf import SuDoRMRF
from avss.nn.consistency import consistent_tracks
from avss.nn.norms import make_norm


class Cascade(OnTrainedBase):
    def __init__(self, base: dict, base_weights: str | None = None, sample_rate: int | None = None,
                 freeze_base: bool = True):
        super().__init__()
        self.setup_base(base, base_weights, sample_rate, freeze_base)
        if not isinstance(self.base, SuDoRMRF):
            raise TypeError(f"Cascade builds on a SuDoRMRF, not {type(self.base).__name__}")
        self.second = build_from_config(self.base.config)
        self.second.load_state_dict(self.base.state_dict())
        masker = self.second.masker
        # one norm over both tracks' frames: level-free like the mixture's path, and keeps their relative level
        self.estimate_norm = make_norm(self.base.config["norm"], self.n_src * masker.n_filters)
        self.estimate_input = nn.Conv1d(self.n_src * masker.n_filters, masker.bottleneck[-1].out_channels, 1)
        nn.init.zeros_(self.estimate_input.weight)
        nn.init.zeros_(self.estimate_input.bias)

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        length = mix.shape[-1]
        first = consistent_tracks(self.first_tracks(mix), mix)
        padded = self.second.pad_to_frames(mix)
        first = nn.functional.pad(first, (0, padded.shape[-1] - length))
        b, s, _ = first.shape
        first_frames = self.second.encoder(first.reshape(b * s, -1))  # [B*S, N, T]
        first_frames = self.estimate_norm(first_frames.reshape(b, s * first_frames.shape[1], -1))
        return self.second.separate_padded(padded, self.estimate_input(first_frames))[..., :length]
