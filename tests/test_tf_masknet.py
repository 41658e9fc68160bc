"""TF-MaskNet: shapes, level invariance, complex masking, persistence, a tiny overfit with PIT, size and cost."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from avss.models import Separator, TFMaskNet
from avss.models.base import build_from_config
from avss.utils.complexity import count_macs
from conftest import overfit_separation

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
SR = 16000

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(masker="blstm", **kw):
    return TFMaskNet(n_fft=64, hop=16, masker=masker, dim=16, hidden=16, layers=2, tcn_blocks=3, **kw)


@pytest.mark.parametrize("masker", ["blstm", "tcn"])
@pytest.mark.parametrize("length", [1, 31, 1000, 4001])
def test_output_has_input_length_and_is_finite(masker, length):
    out = tiny(masker)(torch.randn(2, length))
    assert out.shape == (2, 2, length)
    assert torch.isfinite(out).all()


def test_input_norm_can_be_left_out():
    model = tiny(input_norm=False)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in model.input_proj)
    assert any(isinstance(m, torch.nn.LayerNorm) for m in tiny().input_proj)
    out = model(torch.randn(1, 3000))
    assert out.shape == (1, 2, 3000) and torch.isfinite(out).all()


def test_silent_input_gives_finite_silence():
    out = tiny()(torch.zeros(1, 2000))
    assert torch.isfinite(out).all() and out.abs().max() < 1e-6


def test_output_scales_with_the_input_level():
    torch.manual_seed(0)
    model = tiny().eval()
    mix = torch.randn(1, 3000)
    torch.testing.assert_close(model(100 * mix), 100 * model(mix), rtol=1e-3, atol=1e-4)


def test_complex_mask_rotates_and_scales_the_mixture():
    """With a constant mask (a + bj) per source the output is the mixture's STFT times a + bj, i.e. a*mix
    plus b times the mixture shifted by a quarter period in every bin; a = 1, b = 0 gives the mixture back."""
    torch.manual_seed(0)
    model = tiny().eval()
    f = model.n_freqs
    with torch.no_grad():
        model.head.weight.zero_()
        bias = torch.zeros(2, 2, f)
        bias[0, 0] = 1.0  # source 1: mask 1 + 0j
        bias[1, 0] = 0.5  # source 2: mask 0.5 + 0j
        model.head.bias.copy_(bias.flatten())
    mix = torch.randn(1, 4000)
    out = model(mix)
    torch.testing.assert_close(out[0, 0], mix[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out[0, 1], 0.5 * mix[0], atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        bias[0] = 0.0
        bias[0, 1] = 1.0  # source 1: mask j -> a 90-degree phase shift: same energy, uncorrelated with the mix
        model.head.bias.copy_(bias.flatten())
    rotated = model(mix)[0, 0]
    assert abs(rotated.norm() / mix.norm() - 1) < 0.05
    assert abs(torch.dot(rotated, mix[0]) / (rotated.norm() * mix.norm())) < 0.05


def test_unknown_masker_or_features_are_refused():
    with pytest.raises(ValueError, match="masker"):
        TFMaskNet(masker="lstm")
    with pytest.raises(ValueError, match="features"):
        TFMaskNet(features="phase")
    with pytest.raises(ValueError, match="mask"):
        TFMaskNet(mask="phase")


def test_magnitude_mask_is_a_sigmoid_gain_that_keeps_the_mixture_phase():
    torch.manual_seed(0)
    model = tiny(mask="magnitude").eval()
    spec = torch.randn(1, 2, model.n_freqs, 9)
    masks = model.estimate_masks(spec)
    assert masks.shape == (1, 2, 2, model.n_freqs, 9)
    assert (masks[:, :, 0] > 0).all() and (masks[:, :, 0] < 1).all() and (masks[:, :, 1] == 0).all()
    with torch.no_grad():  # head bias +-20 -> masks ~1 and ~0: mixture and silence
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([20.0, -20.0]).repeat_interleave(model.n_freqs))
    mix = torch.randn(1, 3000)
    out = model(mix)
    torch.testing.assert_close(out[0, 0], mix[0], atol=1e-4, rtol=1e-4)
    assert out[0, 1].abs().max() < 1e-6


@pytest.mark.parametrize("features,planes", [("magnitude", 1), ("complex", 2), ("both", 3)])
def test_input_features_are_compressed_magnitude_and_or_spectrum(features, planes):
    model = tiny(features=features)
    spec = torch.randn(2, 2, model.n_freqs, 7)
    feats = model.input_features(spec)
    assert feats.shape == (2, 7, planes * model.n_freqs)
    mag = spec.pow(2).sum(1).sqrt()  # [B, F, T]
    if features != "complex":  # first plane: |X|^0.3
        torch.testing.assert_close(feats[..., :model.n_freqs], mag.pow(0.3).transpose(1, 2), atol=1e-4, rtol=1e-4)
    if features != "magnitude":  # complex planes: same phase, magnitude |X|^0.3
        re = feats[..., -2 * model.n_freqs:-model.n_freqs]
        im = feats[..., -model.n_freqs:]
        torch.testing.assert_close((re**2 + im**2).sqrt(), mag.pow(0.3).transpose(1, 2), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(torch.atan2(im, re), torch.atan2(spec[:, 1], spec[:, 0]).transpose(1, 2),
                                   atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("mask", ["complex", "magnitude"])
def test_save_and_load_round_trip(tmp_path, mask):
    torch.manual_seed(0)
    model = tiny("tcn", mask=mask).eval()
    model.save_pretrained(tmp_path / "m.pt")
    loaded = Separator.from_pretrained(tmp_path / "m.pt")
    assert type(loaded) is TFMaskNet and loaded.config == model.config
    x = torch.randn(1, 1234)
    torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.parametrize("masker", ["blstm", "tcn"])
def test_tiny_model_overfits_one_batch_with_pit(masker):
    torch.manual_seed(0)
    model = TFMaskNet(n_fft=256, hop=64, masker=masker, dim=32, hidden=32, layers=2, tcn_blocks=4)
    before, mixture, after = overfit_separation(model)
    assert after > mixture + 8 and after > before + 8, (before, mixture, after)


@pytest.mark.parametrize("name,params,macs", [("tfmask_blstm", 4.016e6, 0.504e9), ("tfmask_tcn", 4.735e6, 0.590e9)])
def test_shipped_configs_size_and_cost(name, params, macs):
    model = build_from_config(OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml")))
    assert abs(sum(p.numel() for p in model.parameters()) - params) / params < 0.01
    assert abs(count_macs(model, torch.randn(1, SR)) - macs) / macs < 0.01
