"""Audio-visual Conv-TasNet for target-speaker extraction.

The target speaker's mouth frames are encoded per frame (lip frontend), projected, repeated to the audio
frame rate and fused with the audio features by concatenation + 1x1 conv before TCN repeat `fuse_at`,
in the manner of time-domain AV separators (Wu et al. 2019, "Time domain audio visual speech separation").
"""
import torch
from torch import nn

from avss.models.base import EncoderMaskerDecoder
from avss.models.convtasnet import TCNMasker
from avss.nn.codecs import ConvDecoder, ConvEncoder
from avss.nn.visual import align_to_frames, make_lip_frontend


class AVTCNMasker(TCNMasker):
    def __init__(self, visual_dim, fuse_at, blocks, **kw):
        super().__init__(blocks=blocks, **kw)
        bottleneck = kw["bottleneck"]
        self.fuse_layer = fuse_at * blocks
        self.visual_proj = nn.Sequential(nn.Conv1d(visual_dim, bottleneck, 1), nn.PReLU())
        self.fuse = nn.Conv1d(2 * bottleneck, bottleneck, 1)

    def forward(self, frames: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        x = self.bottleneck(frames)
        v = align_to_frames(self.visual_proj(visual), x.shape[-1])

        def fuse(i, h):
            return self.fuse(torch.cat([h, v], dim=1)) if i == self.fuse_layer else h

        return self.masks(self.tcn(x, between=fuse))


class AVConvTasNet(EncoderMaskerDecoder):
    needs_visual = True
    task = "extraction"

    def __init__(self, sample_rate: int = 16000, n_filters: int = 256, kernel_size: int = 32, bottleneck: int = 128,
                 hidden: int = 256, skip: int = 128, conv_kernel: int = 3, blocks: int = 8, repeats: int = 3,
                 norm: str = "gLN", mask_act: str = "sigmoid", visual_dim: int = 128, fuse_at: int = 1,
                 lip_frontend: dict | None = None):
        super().__init__()
        if not 0 <= fuse_at < repeats:
            raise ValueError(f"fuse_at={fuse_at} must index one of the {repeats} TCN repeats")
        self.n_src, self.sample_rate = 1, sample_rate
        stride = kernel_size // 2
        self.lip_frontend = make_lip_frontend(lip_frontend, visual_dim)
        self.encoder = ConvEncoder(n_filters, kernel_size, stride)
        self.masker = AVTCNMasker(visual_dim, fuse_at, blocks, n_filters=n_filters, n_src=1, bottleneck=bottleneck,
                                  hidden=hidden, skip=skip, kernel=conv_kernel, repeats=repeats, norm=norm,
                                  mask_act=mask_act)
        self.decoder = ConvDecoder(n_filters, kernel_size, stride)
