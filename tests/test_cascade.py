"""The cascade of a trained SuDoRM-RF and a second copy that sees its tracks (avss.models.Cascade)."""
import pytest
import torch

from avss.models import Cascade, Separator, SuDoRMRF, TFMaskNet


def saved_base(tmp_path, seed=0):
    torch.manual_seed(seed)
    base = SuDoRMRF(sample_rate=16000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, blocks=2, depth=2)
    base.save_pretrained(tmp_path / "base.pt")
    return base.eval(), str(tmp_path / "base.pt")


def listening_cascade(tmp_path):
    """A cascade on a saved base whose second pass already hears the first (random `estimate_input`)."""
    base, path = saved_base(tmp_path)
    model = Cascade(base=base.config, base_weights=path).eval()
    with torch.no_grad():
        model.estimate_input.weight.normal_()
    return model


def test_the_untrained_cascade_returns_exactly_the_first_stage_tracks(tmp_path):
    base, path = saved_base(tmp_path)
    model = Cascade(base=base.config, base_weights=path).eval()
    for length in (3000, 3011):  # also a length the encoder has to pad
        mix = torch.randn(2, length)
        with torch.no_grad():
            torch.testing.assert_close(model(mix), base(mix), rtol=0, atol=1e-6)


def test_the_second_stage_listens_to_the_first_stage_tracks(tmp_path):
    model = listening_cascade(tmp_path)
    mix = torch.randn(1, 3000)
    with torch.no_grad():
        changed = model(mix)
        model.base.masker.head[-1].bias.add_(1.0)  # other first-stage tracks
        assert (model(mix) - changed).abs().max() > 1e-3


def test_only_the_second_stage_learns_and_one_step_moves_it_off_the_first_stage(tmp_path):
    base, path = saved_base(tmp_path)
    model = Cascade(base=base.config, base_weights=path).train()
    assert not model.base.training and model.second.training
    mix = torch.randn(2, 3000)
    model(mix)[:, 0].pow(2).mean().backward()
    assert all(p.grad is None for p in model.base.parameters())
    assert model.estimate_input.weight.grad.abs().sum() > 0
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    with torch.no_grad():
        assert (model.eval()(mix) - base(mix)).abs().max() > 1e-4
    assert model.frame_hop == base.frame_hop


def test_checkpoint_round_trip_needs_no_base_file(tmp_path):
    model = listening_cascade(tmp_path)
    model.save_pretrained(tmp_path / "cascade.pt")
    (tmp_path / "base.pt").unlink()
    loaded = Separator.from_pretrained(tmp_path / "cascade.pt")
    mix = torch.randn(1, 2000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), model(mix))


def test_refuses_a_base_that_is_not_a_sudormrf():
    with pytest.raises(TypeError, match="SuDoRMRF"):
        Cascade(base=TFMaskNet(n_fft=64, hop=16, dim=8, hidden=8, layers=1).config)


def test_the_experiment_config_builds_a_cascade_on_the_shipped_model():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    root = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(root / "configs"), version_base=None):
        cfg = compose("train", overrides=["experiment=cascade16_dm",
                                          f"model.base_weights={root / 'checkpoints/default.pt'}"])
    model = instantiate(cfg.model).eval()
    shipped = Separator.from_pretrained(root / "checkpoints/default.pt").eval()
    mix = torch.randn(1, 8000)
    with torch.no_grad():
        torch.testing.assert_close(model(mix), shipped(mix), rtol=0, atol=1e-6)


def test_the_cascade_is_level_free_like_its_base(tmp_path):
    # the training mixtures come at random levels: what the second stage hears of the first tracks must not
    # depend on the level (a first version fed the tracks' raw encoder frames)
    model = listening_cascade(tmp_path)
    mix = torch.randn(1, 3000)
    with torch.no_grad():
        torch.testing.assert_close(model(30 * mix), 30 * model(mix), rtol=1e-4, atol=1e-4)


def test_the_trained_cascade_checkpoint_loads_in_one_line_without_its_base_file(monkeypatch, tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # its config names checkpoints/default.pt, which must not be read
    model = Separator.from_pretrained(root / "checkpoints" / "cascade16.pt")
    assert isinstance(model, Cascade) and model.estimate_input.weight.abs().max() > 0
