"""IIANet (Li, Yang, Sun & Hu, "IIANet: An Intra- and Inter-Modality Attention Network for Audio-Visual Speech
Separation", ICML 2024) for target-speaker extraction, re-implemented from the paper.

  encoder    Conv1d (kernel K, stride S, `enc_basis` filters; default K/2 + 1 as in the authors' configs) -> ReLU
             -> gLN -> 1x1 to the audio bottleneck (N_a = 128)
  video      512-d lip embeddings (25 fps) -> 1x1 to N_v = 64 channels
  separator  one IntraA/InterA block with shared weights, applied `iterations` times (16). The first
             `av_iterations` (4) run the audio and video IntraA blocks joined by InterA-T/-M and end with
             InterA-B; the remaining ones run the audio IntraA block alone. From the second iteration on the
             block's input is the mixture feature plus the previous output (per-channel 1x1 conv + PReLU).
  masks      PReLU -> 1x1 (N_a -> enc_basis) -> ReLU, applied to the encoder output
  decoder    ConvTranspose1d (kernel K, stride S)

Readings where the description leaves room (see avss.nn.iia_blocks):
  * the pooled global feature is refined by multi-head self-attention + a convolutional FFN (as the global
    attention of TDANet, the same group's audio-only top-down-attention separator); an FFN alone gives
    1.8 M params / 13.0 G MACs, far below the authors' model;
  * select-attention convs (W1, W2) are per-channel and evaluated at the coarse resolution, then upsampled;
  * every InterA connection uses x += sigmoid(Wg o) * x + Wb o (o = the other modality), 1x1 convs + gLN;
  * the video path (64 channels) has the same block structure as the audio one, weights shared over its iterations.
Separator size and cost at 1 s (lip frontend excluded, avss count_macs): 2.86 M params, 18.25 G MACs for the
16-iteration model (authors' model under torch.utils.flop_counter: 3.04 M, 17.1 G).

`checkpointing` (training only) recomputes every block application in the backward pass instead of storing its
activations: the full model needs ~3.2 GB per second of audio per example for a training step without it and
~0.9 GB with it, for ~1.3-1.5x the step time.

The fast variant of the paper (IIANet-fast) is the same network with fewer audio-only iterations
(configs/model/iianet_fast.yaml). See avss.nn.iia_blocks for the blocks.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from avss.models.base import EncoderMaskerDecoder
from avss.nn.codecs import ConvDecoder, ConvEncoder
from avss.nn.iia_blocks import AVIntraInterBlock, BottomInterA, ConvNorm, IntraABlock
from avss.nn.norms import GlobalLayerNorm
from avss.nn.visual import make_lip_frontend


class RecurrentInput(nn.Sequential):
    """Input of iteration r > 0: per-channel 1x1 conv + PReLU of (mixture feature + previous output)."""

    def __init__(self, channels: int):
        super().__init__(nn.Conv1d(channels, channels, 1, groups=channels), nn.PReLU())


class IIANetMasker(nn.Module):
    """Encoder frames [B, N, T] + lip embeddings [B, D, Tv] -> one mask [B, 1, N, T]."""

    def __init__(self, n_basis: int, bottleneck: int, hidden: int, depth: int, pyramid_kernel: int, iterations: int,
                 av_iterations: int, visual_dim: int, video_channels: int, video_hidden: int, attention_heads: int,
                 video_attention_heads: int, ffn_expansion: int, gate_kernel: int, checkpointing: bool):
        super().__init__()
        self.iterations, self.av_iterations = iterations, av_iterations
        self.checkpointing = checkpointing
        self.audio_in = nn.Sequential(GlobalLayerNorm(n_basis), nn.Conv1d(n_basis, bottleneck, 1))
        self.video_in = ConvNorm(visual_dim, video_channels, 1)
        audio = IntraABlock(bottleneck, hidden, depth, pyramid_kernel, attention_heads, ffn_expansion, gate_kernel)
        video = IntraABlock(video_channels, video_hidden, depth, pyramid_kernel, video_attention_heads, ffn_expansion,
                            gate_kernel)
        self.block = AVIntraInterBlock(audio, video, hidden, video_hidden)
        self.bottom = BottomInterA(video_channels, bottleneck)
        self.audio_recur = RecurrentInput(bottleneck)
        self.video_recur = RecurrentInput(video_channels)
        self.head = nn.Sequential(nn.PReLU(), nn.Conv1d(bottleneck, n_basis, 1), nn.ReLU())

    def _av_step(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, v = self.block(a, v)
        return self.bottom(a, v), v  # InterA-B

    def _step(self, fn, *inputs):
        """One block application; with `checkpointing` (training only) its activations are recomputed in the
        backward pass instead of stored, which divides the activation memory by about the number of iterations."""
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(fn, *inputs, use_reentrant=False)
        return fn(*inputs)

    def forward(self, frames: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        a_mix = self.audio_in(frames)
        v_mix = self.video_in(visual)
        a, v = a_mix, v_mix
        for r in range(self.iterations):
            if r:
                a = self.audio_recur(a_mix + a)
            if r < self.av_iterations:
                if r:
                    v = self.video_recur(v_mix + v)
                a, v = self._step(self._av_step, a, v)
            else:
                a = self._step(self.block.audio_only, a)
        return self.head(a).unsqueeze(1)


class IIANet(EncoderMaskerDecoder):
    needs_visual = True
    task = "extraction"

    def __init__(self, sample_rate: int = 16000, enc_kernel: int = 16, enc_stride: int = 4,
                 enc_basis: int | None = None, bottleneck: int = 128, hidden: int = 512, depth: int = 5,
                 pyramid_kernel: int = 5, iterations: int = 16, av_iterations: int = 4, visual_dim: int = 512,
                 video_channels: int = 64, video_hidden: int = 64, attention_heads: int = 8,
                 video_attention_heads: int = 8, ffn_expansion: int = 2, gate_kernel: int = 1,
                 checkpointing: bool = True, lip_frontend: dict | None = None):
        super().__init__()
        if not 0 <= av_iterations <= iterations or iterations < 1:
            raise ValueError(f"need 1 <= iterations and 0 <= av_iterations <= iterations, got "
                             f"iterations={iterations}, av_iterations={av_iterations}")
        self.n_src, self.sample_rate = 1, sample_rate
        n_basis = enc_basis if enc_basis else enc_kernel // 2 + 1
        self.lip_frontend = make_lip_frontend(lip_frontend, visual_dim)
        self.encoder = ConvEncoder(n_basis, enc_kernel, enc_stride)
        self.masker = IIANetMasker(n_basis, bottleneck, hidden, depth, pyramid_kernel, iterations, av_iterations,
                                   visual_dim, video_channels, video_hidden, attention_heads, video_attention_heads,
                                   ffn_expansion, gate_kernel, checkpointing)
        self.decoder = ConvDecoder(n_basis, enc_kernel, enc_stride)
