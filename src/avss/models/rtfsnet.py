"""RTFS-Net (Pegg, Li & Hu, "RTFS-Net: Recurrent time-frequency modelling for efficient audio-visual speech
separation", ICLR 2024), re-implemented from the paper for target-speaker extraction (mix + one speaker's lips).

Pipeline ([B, C, T, F] audio maps, T frames of `hop` samples, F = n_fft/2 + 1 bins):
  STFT (Hann, centred) -> real/imag as 2 channels -> Conv2d 3x3 to `enc_channels`, ReLU = the embedding a0
  bottleneck: gLN -> 1x1 to `channels` (C_a)
  video: lip embeddings [B, visual_dim, Tv] (25 fps) -> 1x1 to `video_channels` (C_v) -> VP block
  one RTFS block (AP block) on the audio -> CAF fusion with the video -> the SAME RTFS block R - 1 more times on
  (x + fused)
  S3: PReLU -> 1x1 to `enc_channels` -> ReLU = complex mask (first/second half = real/imag), multiplied (complex
  product) with a0 split the same way -> ConvTranspose2d 3x3 to 2 channels (real, imag) -> iSTFT.
The RTFS block is shared over all R applications, so the parameter count does not depend on R.

Size and cost (2 s at 16 kHz, batch 1, lip frontend excluded, torch.utils.flop_counter): 0.776 M params for every
R; 21.90 G MACs at R=4, 30.57 G at R=6, 56.57 G at R=12 (the paper's model: 0.74 M, 21.9 G, 56.7 G).
Choices where the description leaves room (see avss.nn.rtfs_blocks for the blocks):
* compression: the first depthwise conv keeps the resolution and each further one halves T and F, so with
  depth 2 the RNNs and attention run at T/2 x F/2 (two halvings, T/4 x F/4, would give ~12 G MACs at R=4);
* the S3 mask has `enc_channels` outputs for the single target: enc_channels/2 complex values, matching the
  embedding's real/imaginary halves;
* CAF attention: per head a softmax over video time (a softmax over the heads, averaged over the heads, would
  be the constant 1/heads).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avss.models.base import Separator
from avss.nn.rtfs_blocks import RNN_TYPES, CAFusion, GlobalNorm, rtfs_block, vp_block
from avss.nn.stft import ISTFTDecoder, STFTEncoder
from avss.nn.visual import make_lip_frontend


class SpectralSourceSeparation(nn.Module):
    """S3: features [B, C_a, T, F] + embedding a0 [B, N, T, F] -> masked embedding [B, N, T, F] (complex product,
    channels 0..N/2-1 real, N/2..N-1 imaginary, for both the mask and a0)."""

    def __init__(self, channels: int, enc_channels: int):
        super().__init__()
        self.mask = nn.Sequential(nn.PReLU(), nn.Conv2d(channels, enc_channels, 1), nn.ReLU())

    def forward(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        m_re, m_im = self.mask(features).chunk(2, dim=1)
        e_re, e_im = embedding.chunk(2, dim=1)
        return torch.cat([m_re * e_re - m_im * e_im, m_re * e_im + m_im * e_re], dim=1)


class RTFSNet(Separator):
    needs_visual = True
    task = "extraction"

    def __init__(self, sample_rate: int = 16000, n_fft: int = 256, hop: int = 128, enc_channels: int = 256,
                 channels: int = 256, hidden: int = 64, repeats: int = 4, depth: int = 2, kernel: int = 4,
                 rnn: str = "sru", rnn_hidden: int = 32, rnn_layers: int = 4, unfold: int = 8, att_heads: int = 4,
                 att_qk_dim: int = 4, visual_dim: int = 512, video_channels: int = 64, video_hidden: int = 64,
                 video_depth: int = 4, video_kernel: int = 3, video_heads: int = 8, fusion_heads: int = 4,
                 fusion_kernel: int = 1, dropout: float = 0.1, lip_frontend: dict | None = None):
        super().__init__()
        if repeats < 1:
            raise ValueError(f"repeats={repeats} must be >= 1")
        if enc_channels % 2:
            raise ValueError(f"enc_channels={enc_channels} must be even (real and imaginary halves)")
        if rnn not in RNN_TYPES:
            raise ValueError(f"unknown rnn {rnn!r}; choose one of {list(RNN_TYPES)}")
        if n_fft // 2 + 1 < 2 ** max(depth - 1, 0):
            raise ValueError(f"n_fft={n_fft} gives too few frequency bins for depth={depth}")
        self.n_src, self.sample_rate, self.repeats = 1, sample_rate, repeats
        self.lip_frontend = make_lip_frontend(lip_frontend, visual_dim)
        self.stft = STFTEncoder(n_fft, hop)
        self.istft = ISTFTDecoder(n_fft, hop)
        self.encoder = nn.Sequential(nn.Conv2d(2, enc_channels, 3, padding=1), nn.ReLU())
        self.bottleneck = nn.Sequential(GlobalNorm(enc_channels), nn.Conv2d(enc_channels, channels, 1))
        self.video_proj = nn.Conv1d(visual_dim, video_channels, 1)
        self.vp_block = vp_block(video_channels, video_hidden, video_depth, video_kernel, video_heads, dropout)
        self.rtfs_block = rtfs_block(channels, hidden, depth, kernel, rnn, rnn_hidden, rnn_layers, unfold, att_heads,
                                     att_qk_dim)
        self.fusion = CAFusion(channels, video_channels, fusion_heads, fusion_kernel)
        self.s3 = SpectralSourceSeparation(channels, enc_channels)
        self.decoder = nn.ConvTranspose2d(enc_channels, 2, 3, padding=1)
        # shortest input handled without special cases: >= n_fft samples and enough frames for every level
        self.min_samples = max(n_fft, hop * 2 ** max(depth - 1, 0))

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        if mix.dim() == 3:
            if mix.shape[1] != 1:
                raise ValueError(f"RTFSNet is single-channel; got mix of shape {tuple(mix.shape)}")
            mix = mix[:, 0]
        length = mix.shape[-1]
        if length < self.min_samples:
            mix = F.pad(mix, (0, self.min_samples - length))
        video = self.vp_block(self.video_proj(self.visual_features(mouths)))  # [B, C_v, Tv]

        spec = self.stft(mix).transpose(-1, -2)  # [B, 2, T, F]
        embedding = self.encoder(spec)  # a0 [B, N, T, F]
        x = self.rtfs_block(self.bottleneck(embedding))  # AP block
        fused = self.fusion(x, video)
        x = fused
        for i in range(self.repeats - 1):  # the same block, R - 1 more times
            x = self.rtfs_block(x if i == 0 else x + fused)
        out = self.decoder(self.s3(x, embedding))  # [B, 2, T, F]
        wav = self.istft(out.transpose(-1, -2), mix.shape[-1])
        return wav[..., :length].unsqueeze(1)
