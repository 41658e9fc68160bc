"""LiMuSE (Liu et al. 2021/2022, "LiMuSE: Lightweight Multi-modal Speaker Extraction").

Target-speaker extraction from a 2-channel mixture with two cues of the target: the lip movements (visual) and a
voiceprint (a speaker embedding of an enrolment utterance). Made light by group communication (GC) and context
codecs (see avss.nn.group_comm), and by low-bit quantisation-aware training (avss.nn.quantization).

    mix [B, 2, L] -> Conv1d encoder (2 -> N=128, kernel 32, stride 16) -> frames [B, N, T]
    audio:      gLN -> context codec 1 (sequence model: audio GC-TCN, N ch, hidden 4N, 6 layers x 2 stacks)
    voiceprint: enrolment waveform -> speaker encoder -> 512-d (or a given 512-d embedding) -> Linear -> N, gLN
    visual:     lip embeddings (512-d, 25 fps) -> Linear -> N, repeated to the frame rate, gLN
    fuse: the three N-channel streams are concatenated group by group (every one of the G groups holds N/G
          channels of each stream: 3N channels in all) -> context codec 2 (sequence model: fusion GC-TCN, 3N ch,
          hidden 12N, 6 layers) -> 1x1 conv 3N -> N -> mask activation -> mask * frames
    ConvTranspose1d decoder (N -> 1) -> the target at the reference microphone (channel 0), [B, 1, L]

Context codecs: chunks of `context` = 32 frames with 50% overlap, a 2-layer GC-TCN context encoder and decoder
(hidden `codec_hidden` = 2N for codec 1, 3 * codec_hidden for codec 2); the sequence model runs at one step per
chunk (16x fewer steps than frames). `groups` (the paper's K, 16 or 32) is the number of GC groups; the
encoder's kernel (the authors' code calls it K too) is `kernel_size`.

Complexity for 3 s of 2-channel 16 kHz audio (lip frontend and speaker encoder excluded, a precomputed voiceprint
given): groups=16 1.16 M parameters / 6.96 G MACs, groups=32 0.44 M / 3.45 G (authors: 1.12 M / 6.99 G, 0.41 M /
3.46 G; most of the parameter difference is the 512-d instead of 256-d visual projection). The speaker encoder
(`speaker_encoder`, ~0.33 M) is trained jointly; pass `enrollment` as a [B, 512] embedding to bypass it.

Quantisation: `quantize={"weight_bits": 3, "act_bits": 8, "temperature": 5.0}` makes every conv/linear layer of
the extraction network (encoder, masker, decoder; not the lip frontend or speaker encoder) quantisation-aware:
soft-staircase 3-bit weights (hard in eval mode), 8-bit min-max activations at the inputs of the masker's layers
(the waveform entering the encoder and the masked frames entering the decoder stay in float).
"""
from __future__ import annotations

import torch
from torch import nn

from avss.models.base import Separator
from avss.nn.codecs import ConvDecoder, ConvEncoder
from avss.nn.group_comm import ContextCodec, GroupCommTCN
from avss.nn.norms import GlobalLayerNorm
from avss.nn.quantization import enable_quantization, quantized_layers, save_quantized
from avss.nn.speaker_encoder import make_speaker_encoder
from avss.nn.visual import align_to_frames, make_lip_frontend

MASK_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
QUANTIZE_KEYS = {"weight_bits", "act_bits", "temperature"}
# Submodules that are not part of the separator proper: no quantisation, excluded from exports/size figures.
AUXILIARY = ("lip_frontend", "speaker_encoder")


class LiMuSEMasker(nn.Module):
    def __init__(self, n_filters, groups, context, audio_hidden, audio_layers, audio_stacks, fusion_hidden,
                 fusion_layers, fusion_stacks, codec_hidden, codec_layers, conv_kernel, visual_dim, voiceprint_dim,
                 mask_act):
        super().__init__()
        n = n_filters
        self.groups = groups
        self.audio_norm, self.voiceprint_norm, self.visual_norm = (GlobalLayerNorm(n) for _ in range(3))
        self.voiceprint_proj = nn.Linear(voiceprint_dim, n)
        self.visual_proj = nn.Conv1d(visual_dim, n, 1)
        audio_tcn = GroupCommTCN(n, audio_hidden, groups, audio_layers, audio_stacks, conv_kernel)
        self.audio_codec = ContextCodec(audio_tcn, n, codec_hidden, groups, context, codec_layers, conv_kernel)
        fusion_tcn = GroupCommTCN(3 * n, fusion_hidden, groups, fusion_layers, fusion_stacks, conv_kernel)
        self.fusion_codec = ContextCodec(fusion_tcn, 3 * n, 3 * codec_hidden, groups, context, codec_layers,
                                         conv_kernel)
        self.mask = nn.Conv1d(3 * n, n, 1)
        self.mask_act = MASK_ACTIVATIONS[mask_act]()

    def forward(self, frames: torch.Tensor, voiceprint: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """frames [B, N, T], voiceprint [B, Dv], visual [B, D, Tv] -> mask [B, N, T]."""
        b, n, t = frames.shape
        g = self.groups
        audio = self.audio_codec(self.audio_norm(frames))
        vp = self.voiceprint_norm(self.voiceprint_proj(voiceprint).unsqueeze(-1)).expand(b, n, t)
        vis = self.visual_norm(align_to_frames(self.visual_proj(visual), t))
        fused = torch.cat([s.reshape(b, g, n // g, t) for s in (audio, vp, vis)], dim=2).reshape(b, 3 * n, t)
        return self.mask_act(self.mask(self.fusion_codec(fused)))


class LiMuSE(Separator):
    needs_visual = True
    task = "extraction"
    in_channels = 2
    extra_inputs = ("enrollment",)

    def __init__(self, sample_rate: int = 16000, n_filters: int = 128, kernel_size: int = 32, groups: int = 16,
                 context: int = 32, audio_hidden: int = 512, audio_layers: int = 6, audio_stacks: int = 2,
                 fusion_hidden: int = 1536, fusion_layers: int = 6, fusion_stacks: int = 1, codec_hidden: int = 256,
                 codec_layers: int = 2, conv_kernel: int = 3, mask_act: str = "relu", visual_dim: int = 512,
                 voiceprint_dim: int = 512, lip_frontend: dict | None = None, speaker_encoder: dict | None = None,
                 quantize: dict | None = None):
        super().__init__()
        if mask_act not in MASK_ACTIVATIONS:
            raise ValueError(f"unknown mask_act {mask_act!r}; choose one of {sorted(MASK_ACTIVATIONS)}")
        if n_filters % groups:
            raise ValueError(f"n_filters={n_filters} is not divisible by groups={groups}")
        self.n_src, self.sample_rate, self.voiceprint_dim = 1, sample_rate, voiceprint_dim
        self.lip_frontend = make_lip_frontend(lip_frontend, visual_dim)
        self.speaker_encoder = make_speaker_encoder(speaker_encoder, voiceprint_dim)
        self.encoder = ConvEncoder(n_filters, kernel_size, kernel_size // 2, in_channels=self.in_channels)
        self.masker = LiMuSEMasker(n_filters, groups, context, audio_hidden, audio_layers, audio_stacks,
                                   fusion_hidden, fusion_layers, fusion_stacks, codec_hidden, codec_layers,
                                   conv_kernel, visual_dim, voiceprint_dim, mask_act)
        self.decoder = ConvDecoder(n_filters, kernel_size, kernel_size // 2)
        if quantize:
            unknown = set(quantize) - QUANTIZE_KEYS
            if unknown:
                raise ValueError(f"unknown quantize options {sorted(unknown)}; use {sorted(QUANTIZE_KEYS)}")
            bits, act_bits = quantize.get("weight_bits", 3), quantize.get("act_bits", 8)
            temperature = float(quantize.get("temperature", 5.0))
            enable_quantization(self.masker, bits, act_bits, temperature)
            for codec in (self.encoder, self.decoder):  # float waveform in, float masked frames in
                enable_quantization(codec, bits, None, temperature)

    def save_quantized(self, path) -> dict:
        """Write the quantised extraction network (bit-packed integer weight codes + one scale per tensor, float32
        for the rest; lip frontend and speaker encoder left out) with `avss.nn.quantization.save_quantized`;
        returns its sizes (file, payload, the same tensors in float32). Needs a model built with `quantize`."""
        if not quantized_layers(self):
            raise ValueError("this model is not quantisation-aware; build it with quantize={weight_bits: 3, ...}")
        return save_quantized(self, path, exclude=AUXILIARY)

    def voiceprint(self, enrollment: torch.Tensor | None) -> torch.Tensor:
        """The target's voiceprint [B, voiceprint_dim]: `enrollment` is an embedding [B, voiceprint_dim] (used as
        is) or an enrolment waveform [B, Le] / [B, 1, Le] at the model's rate (encoded by `speaker_encoder`)."""
        if enrollment is None:
            raise ValueError(f"{type(self).__name__} needs the target speaker's enrolment (enrollment=[B, Le] "
                             f"waveform or [B, {self.voiceprint_dim}] voiceprint embedding)")
        if enrollment.dim() == 2 and enrollment.shape[-1] == self.voiceprint_dim:
            return enrollment
        if self.speaker_encoder is None:
            raise ValueError(f"this {type(self).__name__} has no speaker encoder (speaker_encoder.kind=none): pass "
                             f"enrollment as a [B, {self.voiceprint_dim}] embedding, got {list(enrollment.shape)}")
        return self.speaker_encoder(enrollment)

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None,
                enrollment: torch.Tensor | None = None) -> torch.Tensor:
        if mix.dim() != 3 or mix.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {self.in_channels}-channel mixtures [B, "
                             f"{self.in_channels}, L], got {list(mix.shape)} (data: channels={self.in_channels})")
        length = mix.shape[-1]
        pad = self.encoder.padded_length(length) - length
        if pad:
            mix = nn.functional.pad(mix, (0, pad))
        visual = self.visual_features(mouths)
        voiceprint = self.voiceprint(enrollment)
        frames = self.encoder(mix)  # [B, N, T]
        mask = self.masker(frames, voiceprint, visual)
        return self.decoder((frames * mask).unsqueeze(1))[..., :length]
