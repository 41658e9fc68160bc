"""Visual frontends: mouth-ROI frames [B, T, 96, 96] (uint8 or float) -> per-frame embeddings [B, D, T]."""
import torch
import torch.nn.functional as F
from torch import nn

# mpc001 lip-reading preprocessing (see shared/reference/README.md): /255, 88x88 crop of the 96x96 ROI, normalise.
LIP_MEAN, LIP_STD, LIP_CROP = 0.421, 0.165, 88


def preprocess_mouths(mouths: torch.Tensor, train: bool) -> torch.Tensor:
    """[B, T, H, W] uint8/float in 0..255 -> [B, 1, T, 88, 88] normalised; random crop + flip when `train`."""
    x = mouths.float() / 255.0
    h, w = x.shape[-2:]
    if train:
        top = int(torch.randint(0, h - LIP_CROP + 1, (1,)))
        left = int(torch.randint(0, w - LIP_CROP + 1, (1,)))
    else:
        top, left = (h - LIP_CROP) // 2, (w - LIP_CROP) // 2
    x = x[..., top:top + LIP_CROP, left:left + LIP_CROP]
    if train and bool(torch.rand(()) < 0.5):
        x = x.flip(-1)
    return ((x - LIP_MEAN) / LIP_STD).unsqueeze(1)


class SmallLipFrontend(nn.Module):
    """A light trainable lip encoder (3-D conv stem + per-frame 2-D CNN), the default when no
    pretrained lip-reading weights are configured. ~0.1 M params, cheap enough to train on a CPU."""

    kind = "small"
    temporal_context = 2  # frames each side that influence one output frame (the stem's temporal kernel 5)

    def __init__(self, emb_dim: int = 128, width: int = 16):
        super().__init__()
        self.emb_dim = emb_dim
        self.stem = nn.Sequential(
            nn.Conv3d(1, width, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        chans = [width, 2 * width, 4 * width, 8 * width]
        layers = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.proj = nn.Linear(chans[-1], emb_dim)

    def forward(self, mouths: torch.Tensor) -> torch.Tensor:
        x = self.stem(preprocess_mouths(mouths, self.training))  # [B, C, T, 22, 22]
        b, c, t, h, w = x.shape
        x = self.trunk(x.transpose(1, 2).reshape(b * t, c, h, w)).reshape(b, t, -1)
        return self.proj(x).transpose(1, 2)  # [B, D, T]


def _lrw_resnet18(**config) -> nn.Module:
    from avss.nn.lip_resnet import LRWResNet18Frontend  # imported here: it builds on this module

    return LRWResNet18Frontend(**config)


LIP_FRONTENDS = {"small": SmallLipFrontend, "lrw_resnet18": _lrw_resnet18}


def make_lip_frontend(config: dict | None, emb_dim: int) -> nn.Module:
    """Build the lip encoder named by `config["kind"]` producing `emb_dim`-d embeddings.

    - `small` (the default, also for `config=None`): `SmallLipFrontend`, trained with the model; key `width`.
    - `lrw_resnet18`: the LRW lip-reading frontend (3-D conv + ResNet-18, `avss.nn.lip_resnet`), keys
      `activation` (prelu | swish), `checkpoint` (official mpc001-format file, e.g.
      lrw_resnet18_mstcn_adamw_s3.pth.tar; null = RANDOM weights, since the official files cannot be downloaded
      here) and `freeze` (default true). Its output is 512-d; another `emb_dim` adds a trainable projection.
    """
    config = dict(config or {})
    kind = config.pop("kind", "small")
    if kind not in LIP_FRONTENDS:
        raise ValueError(f"unknown lip frontend {kind!r}; choose one of {sorted(LIP_FRONTENDS)}")
    return LIP_FRONTENDS[kind](emb_dim=emb_dim, **config)


def align_to_frames(visual: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Resample [B, D, Tv] video features to the audio frame count by nearest-frame repetition."""
    return F.interpolate(visual, size=n_frames, mode="nearest")
