"""SuDoRM-RF and its U-ConvBlock: shapes, receptive field, persistence, a tiny overfit with PIT, size and cost."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from avss.models import Separator, SuDoRMRF
from avss.models.base import build_from_config
from avss.nn.uconv import UConvBlock
from avss.utils.complexity import count_macs
from conftest import overfit_separation

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
SR = 16000

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw):
    return SuDoRMRF(sample_rate=SR, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, blocks=2, depth=3, **kw)


@pytest.mark.parametrize("frames", [1, 2, 7, 64, 101])
def test_uconv_block_keeps_the_shape_for_any_length(frames):
    block = UConvBlock(8, 16, depth=4)
    x = torch.randn(2, 8, frames)
    assert block(x).shape == x.shape


def test_uconv_block_sees_far_through_its_coarse_levels():
    """A change at frame 0 reaches frame 20 only through the downsampled levels: with depth 1 (no pyramid) the
    5-tap convolution sees 2 frames either side; with depth 4 the levels reach 2 + 2 + 4 + 8 = 16 frames, plus up
    to 8 more from the nearest-neighbour upsampling of the coarsest level."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 128)
    bumped = x.clone()
    bumped[..., 0] += 10.0
    for depth, reaches in ((1, False), (4, True)):
        block = UConvBlock(8, 16, depth=depth, norm="cLN").eval()  # cLN: no utterance-wide statistics
        diff = (block(bumped) - block(x)).abs()[0, :, 20]
        assert bool(diff.max() > 1e-4) == reaches, depth


@pytest.mark.parametrize("length", [1, 15, 16, 999, 4001])
def test_output_has_input_length_and_is_finite(length):
    out = tiny()(torch.randn(2, length))
    assert out.shape == (2, 2, length)
    assert torch.isfinite(out).all()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mask_act"):
        tiny(mask_act="tanh")
    with pytest.raises(ValueError, match="depth"):
        UConvBlock(8, 16, depth=0)
    with pytest.raises(ValueError, match="kernel"):
        UConvBlock(8, 16, kernel=4)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny().eval()
    model.save_pretrained(tmp_path / "m.pt")
    loaded = Separator.from_pretrained(tmp_path / "m.pt")
    assert type(loaded) is SuDoRMRF and loaded.config == model.config
    x = torch.randn(1, 1234)
    torch.testing.assert_close(loaded(x), model(x))


def test_tiny_model_overfits_one_batch_with_pit():
    torch.manual_seed(0)
    model = SuDoRMRF(sample_rate=SR, n_filters=64, kernel_size=32, bottleneck=32, hidden=64, blocks=2, depth=3)
    before, mixture, after = overfit_separation(model)
    assert after > mixture + 8 and after > before + 8, (before, mixture, after)


@pytest.mark.parametrize("name,params,macs_per_s", [("sudormrf", 2.623e6, 1.920e9),
                                                    ("sudormrf_small", 0.721e6, 0.537e9)])
def test_shipped_configs_size_and_cost(name, params, macs_per_s):
    """sudormrf is the paper's 1.0x model (2.66 M parameters reported); sudormrf_small the CPU-budget one."""
    model = build_from_config(OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml")))
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.01)
    assert count_macs(model, torch.randn(1, model.sample_rate)) == pytest.approx(macs_per_s, rel=0.02)
