"""Conv-TasNet (Luo & Mesgarani, "Conv-TasNet: Surpassing ideal time-frequency magnitude masking", 2019).

The paper's best non-causal configuration is N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3 at 8 kHz
(5.1 M parameters); `kernel_size` is L in samples, the hop is L/2.
"""
import torch
from torch import nn

from avss.models.base import EncoderMaskerDecoder
from avss.nn.codecs import ConvDecoder, ConvEncoder
from avss.nn.norms import make_norm
from avss.nn.tcn import TemporalConvNet

MASK_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=1)}


def make_mask_activation(name: str) -> nn.Module:
    if name not in MASK_ACTIVATIONS:
        raise ValueError(f"unknown mask_act {name!r}; choose one of {sorted(MASK_ACTIVATIONS)}")
    return MASK_ACTIVATIONS[name]()


class TCNMasker(nn.Module):
    """norm -> 1x1 bottleneck -> TCN -> PReLU -> 1x1 to n_src masks."""

    def __init__(self, n_filters, n_src, bottleneck, hidden, skip, kernel, blocks, repeats, norm, mask_act):
        super().__init__()
        self.n_src, self.n_filters = n_src, n_filters
        self.bottleneck = nn.Sequential(make_norm(norm, n_filters), nn.Conv1d(n_filters, bottleneck, 1))
        self.tcn = TemporalConvNet(bottleneck, hidden, skip, kernel, blocks, repeats, norm)
        out_in = skip if skip else bottleneck
        self.head = nn.Sequential(nn.PReLU(), nn.Conv1d(out_in, n_src * n_filters, 1))
        self.mask_act = make_mask_activation(mask_act)

    def masks(self, features: torch.Tensor) -> torch.Tensor:
        b, _, t = features.shape
        return self.mask_act(self.head(features).view(b, self.n_src, self.n_filters, t))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.masks(self.tcn(self.bottleneck(frames)))


class ConvTasNet(EncoderMaskerDecoder):
    def __init__(self, n_src: int = 2, sample_rate: int = 8000, n_filters: int = 512, kernel_size: int = 16,
                 bottleneck: int = 128, hidden: int = 512, skip: int = 128, conv_kernel: int = 3, blocks: int = 8,
                 repeats: int = 3, norm: str = "gLN", mask_act: str = "sigmoid"):
        super().__init__()
        self.n_src, self.sample_rate = n_src, sample_rate
        stride = kernel_size // 2
        self.encoder = ConvEncoder(n_filters, kernel_size, stride)
        self.masker = TCNMasker(n_filters, n_src, bottleneck, hidden, skip, conv_kernel, blocks, repeats, norm, mask_act)
        self.decoder = ConvDecoder(n_filters, kernel_size, stride)
