"""Band-split RNN (avss.models.band_split): band layout, shapes, per-band locality, export split, checkpoint."""
import pytest
import torch
from conftest import assert_export_split_and_round_trip

from avss.models import BandSplitRNN
from avss.models.band_split import DEFAULT_BANDS, band_edges


def tiny(**kw):
    torch.manual_seed(0)
    return BandSplitRNN(n_fft=64, hop=16, bands=[[2000, 1000], [8000, 2000]], dim=4, hidden=6, blocks=2,
                        head_hidden=8, **kw).eval()


def test_the_default_bands_cover_every_bin_once_narrow_at_the_bottom_and_wide_at_the_top():
    edges = band_edges(512, 16000, DEFAULT_BANDS)
    assert edges[0] == (0, 4) and edges[-1] == (240, 257)  # 125 Hz at the bottom; the Nyquist bin joins the top
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
    widths = [stop - start for start, stop in edges]
    assert widths.count(4) == 8 and widths.count(8) == 12 and len(edges) == 28


def test_a_remainder_wider_than_the_last_band_becomes_a_band_of_its_own():
    assert band_edges(64, 16000, [[2000, 1000]]) == [(0, 4), (4, 8), (8, 33)]
    assert band_edges(64, 16000, [[2000, 1000], [8000, 2000]]) == [(0, 4), (4, 8), (8, 16), (16, 24), (24, 33)]


def test_separates_into_two_tracks_of_the_input_length():
    model = tiny()
    for length in (1000, 1537):
        assert model(torch.randn(3, length)).shape == (3, 2, length)


def test_each_band_head_writes_only_its_own_bins():
    model = tiny()
    head = model.heads[1]  # bins 4-7
    for layer in head:
        for p in layer.parameters():
            p.data.zero_()
    masks = model.estimate_masks(torch.randn(2, 2, 33, 10))
    assert masks[..., 4:8, :].abs().max() == 0
    assert masks[..., :4, :].abs().min() > 0 and masks[..., 8:, :].abs().min() > 0


def test_a_band_input_reaches_other_bands_through_the_blocks_and_no_further_without_them():
    model = tiny()
    spec = torch.randn(1, 2, 33, 10)
    changed = spec.clone()
    changed[:, :, 0:4] += 1.0  # only the first band's bins
    diff = (model.estimate_masks(changed) - model.estimate_masks(spec)).abs().amax(dim=(0, 1, 2, 4))
    assert diff[8:].min() > 0  # the blocks carry it across bands
    model.blocks = torch.nn.Sequential()
    diff = (model.estimate_masks(changed) - model.estimate_masks(spec)).abs().amax(dim=(0, 1, 2, 4))
    assert diff[:4].min() > 0 and diff[4:].max() == 0


def test_export_parts_reproduce_forward_and_the_checkpoint_loads(tmp_path):
    loaded = assert_export_split_and_round_trip(tiny(), tmp_path, torch.randn(2, 1200))
    assert loaded.config["bands"] == [[2000, 1000], [8000, 2000]]


def test_the_model_config_builds_the_documented_model():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    configs = Path(__file__).resolve().parents[1] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base=None):
        cfg = compose("train", overrides=["model=band_split"])
    model = instantiate(cfg.model)
    assert isinstance(model, BandSplitRNN) and len(model.edges) == 28
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(1.00e6, rel=0.01)  # README: 1.00 M
