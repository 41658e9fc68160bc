import pytest
import torch

from avss.models import AVConvTasNet, ConvTasNet, Separator


def tiny_convtasnet(**kw):
    return ConvTasNet(sample_rate=8000, n_filters=16, kernel_size=8, bottleneck=8, hidden=16, skip=8, blocks=2,
                      repeats=1, **kw)


def tiny_av():
    return AVConvTasNet(n_filters=16, kernel_size=32, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=2,
                        visual_dim=8, lip_frontend={"kind": "small", "width": 4})


def test_paper_convtasnet_has_5_1_million_parameters():
    assert abs(sum(p.numel() for p in ConvTasNet().parameters()) - 5.1e6) < 0.06e6


@pytest.mark.parametrize("length", [1, 7, 8, 999, 4001])
def test_convtasnet_returns_input_length(length):
    out = tiny_convtasnet()(torch.randn(2, length))
    assert out.shape == (2, 2, length)
    assert torch.isfinite(out).all()


def test_av_model_accepts_raw_mouths_and_cached_embeddings():
    model = tiny_av().eval()
    mix = torch.randn(2, 16000 + 13)
    mouths = torch.randint(0, 256, (2, 26, 96, 96), dtype=torch.uint8)
    assert model(mix, mouths).shape == (2, 1, 16013)
    cached = torch.randn(2, 26, 8)  # [B, T, D] float = precomputed lip embeddings
    assert model(mix, cached).shape == (2, 1, 16013)
    with pytest.raises(ValueError, match="mouth"):
        model(mix)


def test_visual_input_changes_the_output():
    torch.manual_seed(0)
    model = tiny_av().eval()
    mix = torch.randn(1, 8000)
    a = model(mix, torch.zeros(1, 13, 96, 96, dtype=torch.uint8))
    b = model(mix, torch.full((1, 13, 96, 96), 200, dtype=torch.uint8))
    assert not torch.allclose(a, b)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny_convtasnet(mask_act="relu").eval()
    model.save_pretrained(tmp_path / "m.pt", note="test")
    loaded = Separator.from_pretrained(tmp_path / "m.pt")
    assert type(loaded) is ConvTasNet and loaded.config == model.config
    assert loaded.pretrained_info == {"note": "test"}
    x = torch.randn(1, 500)
    torch.testing.assert_close(loaded(x), model(x))


def test_from_pretrained_reports_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        Separator.from_pretrained(tmp_path / "missing.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an avss checkpoint"):
        Separator.from_pretrained(tmp_path / "other.pt")


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="mask_act"):
        tiny_convtasnet(mask_act="tanh")
    with pytest.raises(ValueError, match="fuse_at"):
        AVConvTasNet(repeats=2, fuse_at=2)
