"""IIANet: shapes, audio-visual behaviour, persistence, a tiny overfit, and the full configs' size and cost."""
import functools
from pathlib import Path

import pytest
import torch

from avss.models.base import Separator, build_from_config
from avss.models.iianet import IIANet
from avss.utils.benchmark import model_config
from avss.utils.complexity import count_macs, param_breakdown
from conftest import overfit_extraction

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
SR = 16000


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw):
    args = dict(enc_kernel=16, enc_stride=8, bottleneck=16, hidden=24, depth=3, iterations=3, av_iterations=2,
                visual_dim=8, video_channels=8, video_hidden=8, attention_heads=2, video_attention_heads=2,
                checkpointing=False, lip_frontend={"kind": "small", "width": 4})
    args.update(kw)
    return IIANet(**args)


def cached(batch, seconds, dim=8, seed=0):
    """Precomputed lip embeddings [B, Tv, D] (25 fps), which bypass the lip frontend."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, max(1, round(25 * seconds)), dim, generator=g)


def test_attributes_and_encoder_basis_rule():
    model = tiny()
    assert (model.needs_visual, model.task, model.n_src, model.sample_rate) == (True, "extraction", 1, SR)
    assert model.encoder.conv.out_channels == 16 // 2 + 1  # enc_basis=None: K/2 + 1
    assert tiny(enc_basis=20).encoder.conv.out_channels == 20
    with pytest.raises(ValueError, match="av_iterations"):
        tiny(iterations=2, av_iterations=3)


@pytest.mark.parametrize("length", [1, 15, 4001])
def test_output_length_equals_input_length(length):
    model = tiny().eval()
    with torch.no_grad():
        out = model(torch.randn(2, length), cached(2, length / SR))
    assert out.shape == (2, 1, length)
    assert torch.isfinite(out).all()


def test_forward_backward_with_raw_mouths():
    torch.manual_seed(0)
    model = tiny()
    mix = torch.randn(2, 4003)
    mouths = torch.randint(0, 256, (2, 7, 96, 96), dtype=torch.uint8)
    out = model(mix, mouths)
    assert out.shape == (2, 1, 4003)
    out.square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # the video path, every InterA block and the lip frontend take part in the loss
    for name in ("masker.video_in.0.weight", "masker.block.top_a.gate.0.weight", "masker.block.top_v.bias.0.weight",
                 "masker.block.middle.2.gate.0.weight", "masker.bottom.gate.bias.0.weight",
                 "masker.video_recur.0.weight", "lip_frontend.proj.weight"):
        assert grads[name].abs().sum() > 0, name
    with pytest.raises(ValueError, match="mouth"):
        model(mix)


def test_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = tiny(checkpointing=False)
    ckpt = tiny(checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    mix, vis = torch.randn(2, 2001), cached(2, 2001 / SR)
    grads = []
    for model in (plain, ckpt):
        model(mix, vis).square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, msg=name)


def test_video_matters_only_in_the_audio_visual_iterations():
    torch.manual_seed(0)
    mix = torch.randn(1, 4000)
    a, b = cached(1, 0.25, seed=1), cached(1, 0.25, seed=2)
    with torch.no_grad():
        model = tiny().eval()
        assert not torch.allclose(model(mix, a), model(mix, b))
        audio_only = tiny(av_iterations=0).eval()
        torch.testing.assert_close(audio_only(mix, a), audio_only(mix, b))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny().eval()
    model.save_pretrained(tmp_path / "iianet.pt", note="test")
    loaded = Separator.from_pretrained(tmp_path / "iianet.pt")
    assert type(loaded) is IIANet and loaded.config == model.config
    mix, vis = torch.randn(1, 3001), cached(1, 3001 / SR)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix, vis), model(mix, vis))


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = tiny(enc_stride=4, bottleneck=32, hidden=32, attention_heads=4, iterations=2, av_iterations=1)
    before, mixture, after = overfit_extraction(model, 100, cue_for=lambda mix: cached(2, 0.25, seed=5))
    assert after > before + 5.0 and after > mixture + 5.0, (before, mixture, after)


@functools.lru_cache(maxsize=None)
def _separator_figures(name):
    model = build_from_config(model_config(name, CONFIGS)).eval()
    params = param_breakdown(model)["separator"]
    # 1 s of 16 kHz audio, batch 1; cached 512-d lip embeddings bypass the lip frontend
    macs = count_macs(model, torch.randn(1, SR), torch.randn(1, 25, model.config["visual_dim"]))
    return model, params, macs


def test_full_config_matches_the_published_size_and_cost():
    model, params, macs = _separator_figures("iianet")
    assert model.encoder.conv.out_channels == 9 and model.masker.iterations == 16
    # targets: 3.04 M params and 17.1 G MACs (authors' model under torch.utils.flop_counter), within 10 %
    assert abs(params - 3.04e6) / 3.04e6 < 0.10, params
    assert abs(macs - 17.1e9) / 17.1e9 < 0.10, macs


def test_fast_config_has_the_same_weights_and_fewer_macs():
    _, params, macs = _separator_figures("iianet_fast")
    _, full_params, full_macs = _separator_figures("iianet")
    assert params == full_params
    assert 0.55 < macs / full_macs < 0.70, macs / full_macs  # 10 of 16 block applications
