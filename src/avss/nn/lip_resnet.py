"""LRW lip-reading visual frontend (3-D conv + ResNet-18), compatible with the mpc001 lip-reading checkpoints.

Mouth frames [B, T, 96, 96] (uint8 or float in 0..255) -> per-frame embeddings [B, 512, T] (or `emb_dim` through a
trainable linear projection). The module and parameter names follow the official state dict (`frontend3D.*`,
`trunk.*`), so the frontend+trunk part of an official checkpoint loads strictly with `load_lrw_checkpoint`:

    frontend3D: Conv3d 1->64, kernel (5, 7, 7), stride (1, 2, 2), pad (2, 3, 3), no bias; BatchNorm3d;
                activation; MaxPool3d (1, 3, 3) / (1, 2, 2) / (0, 1, 1)      88x88 -> 22x22, T unchanged
    trunk:      ResNet-18 on every frame: layer1..layer4, 2 basic blocks each, 64/128/256/512 channels,
                1x1-conv downsample in the first block of layers 2-4, global average pool   -> 512 per frame

Activation `prelu` (per-channel PReLU, the variant of `lrw_resnet18_mstcn_adamw_s3.pth.tar` and
`frcnn_128_512.backbone.pth.tar` used by the separation papers) or `swish` (x * sigmoid(x), no parameters; the
mpc001 config since 2022). Without a checkpoint the weights are random: the official files cannot be downloaded
here, so pass `checkpoint=PATH` once you have one. The small trainable frontend (`avss.nn.visual.SmallLipFrontend`)
stays the default of every model.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from avss.io.errors import first_line
from avss.nn.visual import preprocess_mouths
from avss.utils.weight_files import skipping_weight_files

LRW_DIM = 512
ACTIVATIONS = ("prelu", "swish")
PRELU_KEY = "frontend3D.2.weight"  # exists only in the PReLU variant
KEPT_PREFIXES = ("frontend3D.", "trunk.")

def _activation(kind: str, channels: int) -> nn.Module:
    return nn.PReLU(num_parameters=channels) if kind == "prelu" else nn.SiLU()


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (1x1 conv + BN when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int, activation: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = _activation(activation, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = _activation(activation, channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        h = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(h)) + shortcut)


class ResNet18Trunk(nn.Module):
    """Per-frame 2-D ResNet-18 without its stem: [N, 64, H, W] -> [N, 512]."""

    def __init__(self, activation: str, widths=(64, 128, 256, 512)):
        super().__init__()
        in_channels = widths[0]
        for i, channels in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(in_channels, channels, stride, activation),
                                  BasicBlock(channels, channels, 1, activation))
            setattr(self, f"layer{i + 1}", layer)
            in_channels = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        return self.avgpool(x).flatten(1)


class LRWResNet18Frontend(nn.Module):
    """Lip-reading frontend of the LRW models: mouths [B, T, 96, 96] -> [B, emb_dim, T].

    `activation`: "prelu" or "swish" (must match the checkpoint). `checkpoint`: path to an official mpc001-format
    file (`{"model_state_dict": ...}`), loaded strictly into `frontend3D` and `trunk` (the `tcn.*` head is
    dropped); None leaves the weights random. `freeze` (default): the 3-D stem and the trunk get no gradients and
    their batch norms stay in eval mode even when the model trains. `emb_dim` != 512 adds a trainable linear
    projection after the trunk. Input may also be already preprocessed [B, 1, T, 88, 88] floats.
    """

    kind = "lrw_resnet18"  # name in avss.nn.visual.LIP_FRONTENDS
    temporal_context = 2  # frames each side that influence one output frame (the stem's temporal kernel 5)

    def __init__(self, emb_dim: int = LRW_DIM, activation: str = "prelu", checkpoint: str | None = None,
                 freeze: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r} for the LRW frontend; choose one of {ACTIVATIONS}")
        self.emb_dim, self.activation, self.freeze = int(emb_dim), activation, bool(freeze)
        self.frontend3D = nn.Sequential(  # noqa: N815 (name fixed by the official checkpoints)
            nn.Conv3d(1, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            _activation(activation, 64),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = ResNet18Trunk(activation)
        self.proj = nn.Linear(LRW_DIM, self.emb_dim) if self.emb_dim != LRW_DIM else None
        if checkpoint is not None and not skipping_weight_files():  # see avss.utils.weight_files
            load_lrw_checkpoint(self, checkpoint)
        if self.freeze:
            for module in (self.frontend3D, self.trunk):
                module.requires_grad_(False)
                module.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:  # frozen batch norms keep their statistics: never in training mode
            self.frontend3D.eval()
            self.trunk.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed [B, 1, T, 88, 88] -> trunk features [B, T, 512]."""
        x = self.frontend3D(x)  # [B, 64, T, 22, 22]
        b, c, t, h, w = x.shape
        x = self.trunk(x.transpose(1, 2).reshape(b * t, c, h, w))
        return x.reshape(b, t, LRW_DIM)

    def forward(self, mouths: torch.Tensor) -> torch.Tensor:
        x = mouths if mouths.dim() == 5 else preprocess_mouths(mouths, self.training)
        with torch.no_grad() if self.freeze else contextlib.nullcontext():
            feats = self.features(x)
        if self.proj is not None:
            feats = self.proj(feats)
        return feats.transpose(1, 2)  # [B, D, T]


# --------------------------------------------------------------------------------------------- checkpoints

def read_lrw_state_dict(path) -> dict[str, torch.Tensor]:
    """The `frontend3D.*` and `trunk.*` tensors of an mpc001-format checkpoint (`module.` prefix stripped, the
    `tcn.*` classification head dropped). Raises FileNotFoundError / ValueError with a one-line message."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: lip-reading checkpoint not found (pass the official "
                                "lrw_resnet18_mstcn_adamw_s3.pth.tar or frcnn_128_512.backbone.pth.tar)")
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # older files pickle other objects (numpy scalars in best_prec, ...)
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path}: cannot read the lip-reading checkpoint ({first_line(error)})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state_dict"), dict):
        found = f"keys: {', '.join(map(str, list(checkpoint)[:5]))}" if isinstance(checkpoint, dict) \
            else type(checkpoint).__name__
        raise ValueError(f"{path}: not an mpc001 lip-reading checkpoint (expected a dict with 'model_state_dict', "
                         f"found {found}); wrap a plain state dict as torch.save({{'model_state_dict': sd}}, path)")
    state = {}
    for key, value in checkpoint["model_state_dict"].items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith(KEPT_PREFIXES):
            state[key] = value
    if not state:
        raise ValueError(f"{path}: the checkpoint has no frontend3D.* / trunk.* weights (is it a video model?)")
    return state


def load_lrw_checkpoint(module: LRWResNet18Frontend, path) -> LRWResNet18Frontend:
    """Load the official frontend+trunk weights of `path` into `module` strictly (see `read_lrw_state_dict`).

    Raises FileNotFoundError for a missing file and ValueError (one line) for a foreign file, the other
    activation variant, or missing / unexpected / differently shaped tensors.
    """
    state = read_lrw_state_dict(path)
    has_prelu = PRELU_KEY in state
    if has_prelu and module.activation != "prelu":
        raise ValueError(f"{path}: checkpoint has PReLU weights ({PRELU_KEY}); build the frontend with "
                         "activation='prelu'")
    if not has_prelu and module.activation == "prelu":
        raise ValueError(f"{path}: checkpoint has no PReLU weights ({PRELU_KEY} missing, a swish model); build "
                         "the frontend with activation='swish'")
    own = {k: v for k, v in module.state_dict().items() if k.startswith(KEPT_PREFIXES)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
        raise ValueError(f"{path}: checkpoint does not match the LRW ResNet-18 frontend: {', '.join(parts)}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"{path}: {key} has shape {list(value.shape)} in the checkpoint, "
                             f"{list(own[key].shape)} in the frontend")
    for name in ("frontend3D", "trunk"):
        prefix = f"{name}."
        getattr(module, name).load_state_dict(
            {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    return module
