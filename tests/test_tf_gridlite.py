"""TF-GridLite (avss.models.tf_gridlite): shapes, weights shared across frequency, export split, checkpoint."""
import torch
from conftest import assert_export_split_and_round_trip

from avss.models import TFGridLite
from avss.models.tf_gridlite import GridBlock


def tiny(**kw):
    torch.manual_seed(0)
    return TFGridLite(n_fft=64, hop=16, dim=4, hidden=6, blocks=2, **kw).eval()


def test_separates_into_two_tracks_of_the_input_length():
    model = tiny()
    for length in (1000, 1537):
        assert model(torch.randn(3, length)).shape == (3, 2, length)


def test_the_parameter_count_does_not_grow_with_the_frequency_resolution():
    narrow, wide = TFGridLite(n_fft=64, hop=16, dim=4, hidden=6), TFGridLite(n_fft=1024, hop=256, dim=4, hidden=6)
    assert sum(p.numel() for p in narrow.parameters()) == sum(p.numel() for p in wide.parameters())


def test_a_grid_block_runs_along_frequency_in_each_frame_then_along_time_in_each_bin():
    torch.manual_seed(0)
    block = GridBlock(4, 6).eval()
    x = torch.randn(2, 4, 9, 7)  # [B, D, F, T]
    expected = torch.empty_like(x)
    for b in range(2):
        per_frame = torch.stack([block.along_frequency(x[b, :, :, t].T[None])[0] for t in range(7)])  # [T, F, D]
        for f in range(9):
            expected[b, :, f, :] = block.along_time(per_frame[:, f, :][None])[0].T
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_export_parts_reproduce_forward_and_the_checkpoint_loads(tmp_path):
    loaded = assert_export_split_and_round_trip(tiny(), tmp_path, torch.randn(2, 1200))
    assert loaded.config["dim"] == 4


def test_the_model_config_builds_the_documented_model():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    configs = Path(__file__).resolve().parents[1] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base=None):
        cfg = compose("train", overrides=["model=tf_gridlite"])
    model = instantiate(cfg.model)
    assert isinstance(model, TFGridLite) and model.config["n_fft"] == 512
    assert sum(p.numel() for p in model.parameters()) == 56372  # README: 56 k parameters
