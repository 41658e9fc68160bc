"""Learned waveform encoders/decoders (Conv1d / ConvTranspose1d filterbanks)."""
import torch
import torch.nn.functional as F
from torch import nn


class ConvEncoder(nn.Module):
    """[B, L] or [B, C, L] waveform -> [B, N, T] non-negative (ReLU) frames."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int, in_channels: int = 1, relu: bool = True):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv1d(in_channels, n_filters, kernel_size, stride=stride, bias=False)
        self.relu = relu

    def padded_length(self, length: int) -> int:
        """Smallest length >= `length` that the conv/transposed-conv pair reconstructs exactly."""
        if length <= self.kernel_size:
            return self.kernel_size
        n_frames = -(-(length - self.kernel_size) // self.stride) + 1
        return (n_frames - 1) * self.stride + self.kernel_size

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        w = self.conv(wav)
        return F.relu(w) if self.relu else w


class ConvDecoder(nn.Module):
    """[B, ..., N, T] masked frames -> [B, ..., L] waveform by overlap-add (ConvTranspose1d)."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int):
        super().__init__()
        self.deconv = nn.ConvTranspose1d(n_filters, 1, kernel_size, stride=stride, bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        lead = frames.shape[:-2]
        out = self.deconv(frames.reshape(-1, *frames.shape[-2:]))
        return out.reshape(*lead, out.shape[-1])
