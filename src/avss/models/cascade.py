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
also spares its backward pass. `second_passes` > 1 runs the second stage again on its own tracks.

The base may itself be a trained `Cascade`: then the new stage is a copy of the base's trained last stage (its
separator and how it hears tracks), so the untrained deeper cascade computes what the base does with
`second_passes` + 1, and training the new stage on the frozen base adds one more trained refinement.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from avss.models.base import ExportCore, build_from_config
from avss.models.staged import OnTrainedBase
from avss.models.sudormrf import SuDoRMRF
from avss.nn.consistency import consistent_tracks
from avss.nn.norms import make_norm


class Cascade(OnTrainedBase):
    def __init__(self, base: dict, base_weights: str | None = None, sample_rate: int | None = None,
                 freeze_base: bool = True, second_passes: int = 1):
        super().__init__()
        if second_passes < 1:
            raise ValueError(f"second_passes={second_passes}: the second stage runs at least once")
        self.second_passes = second_passes
        self.setup_base(base, base_weights, sample_rate, freeze_base)
        if isinstance(self.base, Cascade):
            for part in ("second", "estimate_norm", "estimate_input"):  # copies of the trained last stage
                setattr(self, part, copy.deepcopy(getattr(self.base, part)).requires_grad_(True))
            return
        if not isinstance(self.base, SuDoRMRF):
            raise TypeError(f"Cascade builds on a SuDoRMRF or a Cascade, not {type(self.base).__name__}")
        self.second = build_from_config(self.base.config)
        self.second.load_state_dict(self.base.state_dict())
        masker = self.second.masker
        # one norm over both tracks' frames: level-free like the mixture's path, and keeps their relative level
        self.estimate_norm = make_norm(self.base.config["norm"], self.n_src * masker.n_filters)
        self.estimate_input = nn.Conv1d(self.n_src * masker.n_filters, masker.bottleneck[-1].out_channels, 1)
        nn.init.zeros_(self.estimate_input.weight)
        nn.init.zeros_(self.estimate_input.bias)

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        return self.separate_padded(*self.padded_inputs(mix))[..., :mix.shape[-1]]

    def padded_inputs(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`separate_padded`'s inputs for a mixture [B, L]: it padded to the frames, and the mask of its samples."""
        padded = self.second.pad_to_frames(mix)
        return padded, real_samples(padded, mix.shape[-1])

    def separate_padded(self, padded: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """[B, L'] mixture padded to the frames, and `real` [B, L'] (1 over its samples, 0 over the padding)
        -> [B, S, L']: the base's tracks, then `second_passes` times the second stage's, each pass
        hearing the tracks of the one before."""
        base_inputs = {"real": real} if isinstance(self.base, Cascade) else {}
        tracks = self.first_tracks(padded, padded=True, **base_inputs)
        for _ in range(self.second_passes):
            tracks = self.second_pass(padded, real, tracks)
        return tracks

    def second_pass(self, padded: torch.Tensor, real: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        """The second stage's tracks [B, S, L'] given earlier ones; these are silenced over the padding first,
        so that it does not sway their gains."""
        heard = consistent_tracks(tracks * real.unsqueeze(1), padded)
        b, s, _ = heard.shape
        frames = self.second.encoder(heard.reshape(b * s, -1))  # [B*S, N, T]
        frames = self.estimate_norm(frames.reshape(b, s * frames.shape[1], -1))
        return self.second.separate_padded(padded, self.estimate_input(frames))

    def export_parts(self):
        def prepare(mix):
            return self.padded_inputs(mix), mix.shape[-1]

        def finish(est, length):
            return est[..., :length]

        return prepare, ExportCore(self, "separate_padded"), finish


def real_samples(padded: torch.Tensor, length: int) -> torch.Tensor:
    """[B, L'] with 1 over the first `length` samples of `padded` and 0 over its padding."""
    return (torch.arange(padded.shape[-1]) < length).to(padded.dtype).expand_as(padded)
