"""Base classes every separator derives from.

A `Separator` maps a mixture [B, L] (or [B, C, L] for multi-channel models) and optional mouth frames
[B, T, 96, 96] to estimates [B, n_src, L]. It records the arguments it was built with, so a saved file
carries its own config and loads with one line: `Separator.from_pretrained(path)`.
"""
from __future__ import annotations

import functools
import importlib
import inspect
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

CHECKPOINT_FORMAT = 1


def plain_config(value):
    """Hydra hands configs over as OmegaConf containers; store plain Python so checkpoints stay portable."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _import_target(target: str):
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


HYDRA_KEYS = ("_recursive_", "_convert_", "_partial_")  # instantiate() options, not constructor arguments


def build_from_config(config: dict) -> "Separator":
    """Instantiate a model from a `{"_target_": "pkg.Class", **kwargs}` dict (Hydra's convention)."""
    config = {key: value for key, value in config.items() if key not in HYDRA_KEYS}
    target = config.pop("_target_")
    return _import_target(target)(**config)


def load_trained_weights(model: "Separator", path, setting: str = "init_from", target: str = "the configured one",
                         hint: str = "choose the matching model= config") -> None:
    """Copy the weights saved at `path` (`.pt` or `.ckpt`) into `model`, which must have the same config:
    fine-tuning, or a part of a composite model. ValueError naming the differing config keys otherwise
    (`setting`: the option that gave `path`; `target`: what it was loaded into; `hint`: what to do)."""
    trained = Separator.from_pretrained(path)
    differing = sorted(k for k in set(trained.config) | set(model.config)
                       if trained.config.get(k) != model.config.get(k) and k not in model.training_options)
    if differing:
        raise ValueError(f"{setting}={path} holds a different model than {target} (it differs in {differing}; "
                         f"the checkpoint holds {trained.config['_target_']}); {hint}")
    model.load_state_dict(trained.state_dict())


class Separator(nn.Module):
    sample_rate: int = 16000
    n_src: int = 2  # output tracks per forward call
    in_channels: int = 1  # audio channels the model expects
    needs_visual: bool = False  # True: forward needs the target speaker's mouths
    task: str = "separation"  # "separation" (PIT over n_src) or "extraction" (one target per mouth stream)
    video_fps: int = 25
    # Per-speaker conditioning inputs beyond the mouths that forward() accepts as keyword arguments, named as
    # the batch keys that carry them ([B, S, ...] in a batch; e.g. "enrollment" for voiceprint models).
    extra_inputs: tuple[str, ...] = ()
    # Config keys that change how the model trains, not its weights: `init_from` may differ in them.
    training_options: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        original = cls.__init__
        signature = inspect.signature(original)

        @functools.wraps(original)
        def init_and_record(self, *args, **kw):
            original(self, *args, **kw)
            if type(self) is cls:  # only the most derived constructor records the config
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                arguments = {k: plain_config(v) for k, v in bound.arguments.items() if k != "self"}
                for name, param in signature.parameters.items():
                    if param.kind is inspect.Parameter.VAR_KEYWORD:
                        arguments.update(arguments.pop(name, {}))
                self.config = {"_target_": f"{cls.__module__}.{cls.__qualname__}", **arguments}

        cls.__init__ = init_and_record

    @property
    def separates_mono_audio(self) -> bool:
        """Single-channel, audio-only separation: the models a composite (Refined, Ensemble) can build on."""
        return not self.needs_visual and self.in_channels == 1 and self.task == "separation"

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def visual_features(self, mouths: torch.Tensor) -> torch.Tensor:
        """For audio-visual models (which own a `lip_frontend`): mouth frames [B, T, H, W] -> embeddings
        [B, D, T]; cached embeddings [B, T, D] (float, 3-D, from extract_visual_features) pass through."""
        if mouths is None:
            raise ValueError(f"{type(self).__name__} needs the target speaker's mouth frames "
                             "(mouths=[B, T, 96, 96] or cached embeddings [B, T, D])")
        if mouths.dim() == 3 and mouths.is_floating_point():
            return mouths.transpose(1, 2)
        return self.lip_frontend(mouths)

    @property
    def frame_hop(self) -> int:
        """Samples between the model's analysis frames (encoder stride or STFT hop); 1 if it has none.
        Test-time shift averaging spreads its shifts over one hop."""
        for part in ("encoder", "stft"):
            module = getattr(self, part, None)
            for name in ("stride", "hop"):
                value = getattr(module, name, None)
                if isinstance(value, int) and value > 0:
                    return value
        return 1

    # ---- persistence -------------------------------------------------------------------------------------
    def save_pretrained(self, path, **info) -> None:
        """Write a self-describing checkpoint: config + weights + free-form training info."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": CHECKPOINT_FORMAT, "model_config": self.config,
                    "state_dict": self.state_dict(), "info": info}, path)

    @staticmethod
    def from_pretrained(path, map_location="cpu") -> "Separator":
        """Load an avss checkpoint (`save_pretrained`) or a Lightning `.ckpt` written by `train.py`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found")
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
        if "model_config" in ckpt:
            config, state = ckpt["model_config"], ckpt["state_dict"]
        elif "hyper_parameters" in ckpt and "model_config" in ckpt["hyper_parameters"]:
            config = ckpt["hyper_parameters"]["model_config"]
            state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        else:
            raise ValueError(f"{path}: not an avss checkpoint (no model config inside)")
        from avss.utils.weight_files import skip_weight_files

        with skip_weight_files():  # all weights are in `state`: no other file is read
            model = build_from_config(config)
        model.load_state_dict(state)
        model.pretrained_info = ckpt.get("info", {})
        return model.eval()

    # ---- export --------------------------------------------------------------------------------------------
    def export_parts(self):
        """Split the forward pass for export (ONNX): `(prepare, core, finish)` with
        `finish(core(*inputs), state) == forward(mix)` where `inputs, state = prepare(mix)`. `core` is the learned
        network (an nn.Module with tensor inputs/outputs whose last axis may vary in length); `prepare`/`finish`
        hold the fixed, parameter-free steps (padding, STFT/iSTFT, level normalisation) that stay outside the
        exported graph. Models that cannot be split raise NotImplementedError."""
        raise NotImplementedError(f"{type(self).__name__} does not support export (no export_parts)")

    # ---- convenience -------------------------------------------------------------------------------------
    def separate(self, mix, sample_rate: int | None = None, mouths=None, **options) -> np.ndarray:
        """Separate one mixture given as a NumPy array [L] (or [C, L]) at `sample_rate` (default: the model's).

        Returns [n_src, L] at the input rate; long inputs are processed in overlapping chunks. `mouths`: one
        [T, 96, 96] uint8 array per target speaker for extraction models. `options` go to
        `avss.inference.separate_array` (chunk_seconds, overlap_seconds, device, and the test-time refinement:
        shifts, flip_sign, mixture_consistency, spectral_filter; by default 4 passes per chunk, README
        "Test-time refinement").
        """
        from avss.inference.chunked import separate_array

        return separate_array(self, mix, sample_rate or self.sample_rate, mouths=mouths, **options)


class ExportCore(nn.Module):
    """`model.<method>` as a module's forward, so that one part of a model can be exported on its own."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *inputs):
        return getattr(self.model, self.method)(*inputs)


class EncoderMaskerDecoder(Separator):
    """Encoder -> masker (estimates n_src masks, optionally from mouths) -> masked frames -> decoder.

    Subclasses set `self.encoder` (ConvEncoder-like, with `padded_length`), `self.masker` and `self.decoder`.
    """

    def pad_to_frames(self, mix: torch.Tensor) -> torch.Tensor:
        """[B, L] -> [B, L'] zero-padded to the length the encoder frames exactly (`separate_padded`'s input)."""
        pad = self.encoder.padded_length(mix.shape[-1]) - mix.shape[-1]
        return nn.functional.pad(mix, (0, pad)) if pad else mix

    def separate_padded(self, mix: torch.Tensor, cue: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L'] mixture already padded to `encoder.padded_length` -> [B, S, L'] estimates. `cue`: the masker's
        second input (visual features for audio-visual models; what a Cascade's second pass hears of its first)."""
        frames = self.encoder(mix)  # [B, N, T]
        masks = self.masker(frames) if cue is None else self.masker(frames, cue)  # [B, S, N, T]
        return self.decoder(frames.unsqueeze(1) * masks)

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        visual = self.visual_features(mouths) if self.needs_visual else None
        return self.separate_padded(self.pad_to_frames(mix), visual)[..., :mix.shape[-1]]

    def export_parts(self):
        if self.needs_visual:
            raise NotImplementedError(f"{type(self).__name__}: only audio-only models can be exported")

        def prepare(mix):
            return (self.pad_to_frames(mix),), mix.shape[-1]

        def finish(est, length):
            return est[..., :length]

        return prepare, ExportCore(self, "separate_padded"), finish
