"""MossFormer / MossFormer2: block internals against plain references, shapes, persistence, a tiny overfit, and the
full configs' size and cost."""
import functools
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avss.losses import si_snr
from avss.models.base import Separator, build_from_config
from avss.models.mossformer import MossFormer, MossFormer2
from avss.nn.mossformer_blocks import (DilatedDenseMemory, GatedFSMNBlock, depthwise_conv_time, joint_attention,
                                       token_shift)
from avss.utils.benchmark import model_config
from avss.utils.complexity import count_macs, count_params
from conftest import speechlike

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
SR = 8000


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(cls=MossFormer2, **kw):
    args = dict(sample_rate=SR, n_filters=32, kernel_size=16, stride=8, dim=32, layers=2, qk_dim=16,
                expansion_factor=2.0, group_size=16, rotary_dim=8, conv_kernel=5, dropout=0.0)
    if cls is MossFormer2:
        args.update(fsmn_inner=16, fsmn_kernel=7, fsmn_depth=2)
    args.update(kw)
    return cls(**args)


# ---- blocks ----------------------------------------------------------------------------------------------
def test_token_shift_delays_half_the_channels_by_one_frame():
    x = torch.arange(12.0).reshape(1, 3, 4)  # [B, T, C]
    y = token_shift(x)
    torch.testing.assert_close(y[0, :, :2], torch.tensor([[0.0, 0.0], [0.0, 1.0], [4.0, 5.0]]))
    torch.testing.assert_close(y[..., 2:], x[..., 2:])


@pytest.mark.parametrize("dilation", [1, 2, 4])
@pytest.mark.parametrize("length", [1, 6, 37])
def test_depthwise_conv_time_equals_dilated_conv1d(length, dilation):
    x, w = torch.randn(2, 3, length), torch.randn(3, 1, 5)
    ref = F.conv1d(x, w, padding=2 * dilation, dilation=dilation, groups=3)
    torch.testing.assert_close(depthwise_conv_time(x, w, dilation), ref)


def test_joint_attention_matches_explicit_local_plus_global_attention():
    torch.manual_seed(0)
    t, group, dk, e = 11, 4, 3, 5
    qq, lq, qk, lk = (torch.randn(2, t, dk) for _ in range(4))
    v = torch.randn(2, t, e)
    out = joint_attention(qq, lq, qk, lk, v, group, torch.nn.Identity())
    ref = torch.zeros_like(v)
    for i in range(t):
        for j in range(t):
            if i // group == j // group:  # same non-overlapping group: quadratic relu^2 attention
                ref[:, i] += F.relu((qq[:, i] * qk[:, j]).sum(-1, keepdim=True) / group) ** 2 * v[:, j]
            ref[:, i] += (lq[:, i] * lk[:, j]).sum(-1, keepdim=True) * v[:, j] / t  # global linear attention
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_dense_memory_is_a_grouped_conv_over_each_channels_history():
    torch.manual_seed(0)
    c, k = 3, 5
    mem = DilatedDenseMemory(c, k, depth=2).eval()
    x = torch.randn(2, 9, c)  # [B, T, C]
    feats = [x.transpose(1, 2)]
    for i, layer in enumerate(mem.layers):
        dense = torch.stack(feats, dim=2).reshape(2, c * (i + 1), 9)  # channel c of every earlier tensor together
        y = F.conv1d(dense, layer.weight, padding=2**i * (k // 2), dilation=2**i, groups=c)
        feats.append(layer.act(layer.norm(y)))
    torch.testing.assert_close(mem(x), feats[-1].transpose(1, 2))


def test_gated_fsmn_block_is_a_residual_block():
    torch.manual_seed(0)
    block = GatedFSMNBlock(8, inner=6, kernel=3, fsmn_kernel=5, fsmn_depth=2, dropout=0.0).eval()
    x = torch.randn(1, 20, 8)
    y = block(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    torch.nn.init.zeros_(block.out.weight)
    torch.nn.init.zeros_(block.out.bias)
    torch.testing.assert_close(block(x), x)  # output projection zeroed: only the residual remains


# ---- models ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MossFormer, MossFormer2])
@pytest.mark.parametrize("length", [1, 7, 15, 999, 4001])
def test_output_has_input_length(cls, length):
    torch.manual_seed(0)
    model = tiny(cls).eval()
    with torch.no_grad():
        out = model(torch.randn(2, length))
    assert out.shape == (2, 2, length)
    assert torch.isfinite(out).all()


def test_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = tiny(dropout=0.1).train()
    out = model(torch.randn(2, 1201))
    out.pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_mossformer2_adds_one_recurrent_block_per_layer():
    v1, v2 = tiny(MossFormer, layers=3), tiny(MossFormer2, layers=3)
    assert len(v1.masker.blocks) == 3 and len(v2.masker.blocks) == 6
    assert count_params(v2) > count_params(v1)
    assert v2.task == "separation" and not v2.needs_visual and v2.n_src == 2
    with pytest.raises(ValueError, match="fsmn_inner"):
        tiny(MossFormer2, fsmn_inner=0)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny().eval()
    model.save_pretrained(tmp_path / "mossformer2.pt", note="test")
    loaded = Separator.from_pretrained(tmp_path / "mossformer2.pt")
    assert type(loaded) is MossFormer2 and loaded.config == model.config
    x = torch.randn(1, 1333)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    s1 = np.stack([speechlike(0.25, SR, seed=1, f0=110), speechlike(0.25, SR, seed=3, f0=210)])
    s2 = np.stack([speechlike(0.25, SR, seed=2, f0=180), speechlike(0.25, SR, seed=4, f0=120)])
    target, mix = torch.from_numpy(s1), torch.from_numpy(s1 + s2)
    model = tiny(dim=48, n_filters=48)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def score():
        with torch.no_grad():
            return si_snr(model(mix)[:, 0], target).mean().item()

    before, mixture = score(), si_snr(mix, target).mean().item()
    for _ in range(150):
        opt.zero_grad()
        (-si_snr(model(mix)[:, 0], target).mean()).backward()
        opt.step()
    after = score()
    print(f"SI-SNR before {before:.1f} dB, mixture {mixture:.1f} dB, after {after:.1f} dB")
    assert after > before + 5.0 and after > mixture + 5.0, (before, mixture, after)


# ---- configs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mossformer", "mossformer2", "mossformer2_16k", "mossformer2_small"])
def test_configs_name_every_constructor_argument(name):
    config = model_config(name, CONFIGS)
    cls = {"avss.models.mossformer.MossFormer": MossFormer,
           "avss.models.mossformer.MossFormer2": MossFormer2}[config.pop("_target_")]
    assert set(config) == set(inspect.signature(cls.__init__).parameters) - {"self"}


@functools.lru_cache(maxsize=None)
def _figures(name):
    model = build_from_config(model_config(name, CONFIGS)).eval()
    # 1 s of audio at the model's rate, batch 1
    return model, count_params(model), count_macs(model, torch.randn(1, model.sample_rate))


def test_mossformer2_matches_the_authors_size_and_cost():
    model, params, macs = _figures("mossformer2")
    assert model.sample_rate == 8000 and len(model.masker.blocks) == 48
    # targets: 55.74 M params and 82.8 G MACs per 1 s at 8 kHz (authors' MossFormer2_SS_8K), within 10 %
    assert abs(params - 55.74e6) / 55.74e6 < 0.10, params
    assert abs(macs - 82.8e9) / 82.8e9 < 0.10, macs


def test_mossformer_matches_the_papers_large_model():
    _, params, _ = _figures("mossformer")
    assert abs(params - 42.1e6) / 42.1e6 < 0.05, params  # MossFormer(L) in the paper's table


def test_16k_config_is_the_same_network_at_twice_the_frame_rate():
    model, params, macs = _figures("mossformer2_16k")
    _, params_8k, macs_8k = _figures("mossformer2")
    assert model.sample_rate == 16000 and params == params_8k
    assert 1.9 < macs / macs_8k < 2.2, macs / macs_8k


def test_small_config_is_cpu_sized():
    _, params, macs = _figures("mossformer2_small")
    assert 2e6 < params < 5e6, params
    assert macs < 10e9, macs
