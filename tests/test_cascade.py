"""The cascade of a trained SuDoRM-RF and a second copy that sees its tracks (avss.models.Cascade)."""
import pytest
import torch

from avss.models import Cascade, Separator, SuDoRMRF, TFMaskNet
from avss.models.base import build_from_config


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


def test_the_second_stage_hears_the_consistent_first_tracks_and_silence_over_the_padding(tmp_path):
    from avss.nn.consistency import consistent_tracks

    model = listening_cascade(tmp_path)
    heard = []
    model.second.encoder.register_forward_hook(lambda module, args, out: heard.append(args[0]))
    mix = torch.randn(2, 3011)  # padded to the frames
    with torch.no_grad():
        model(mix)
        expected = consistent_tracks(model.base(mix), mix).reshape(4, -1)
    tracks = heard[0]  # the first of its two calls (then the mixture): both tracks of both items, padded
    assert tracks.shape[-1] > 3011
    torch.testing.assert_close(tracks[:, :3011], expected, rtol=1e-5, atol=1e-5)
    assert tracks[:, 3011:].abs().max() == 0


def test_more_second_passes_feed_the_second_stage_its_own_tracks(tmp_path):
    model = listening_cascade(tmp_path)
    twice = build_from_config({**model.config, "second_passes": 2}).eval()
    twice.load_state_dict(model.state_dict())
    mix = torch.randn(2, 3011)
    padded = model.second.pad_to_frames(mix)
    real = torch.ones_like(padded)
    real[:, 3011:] = 0
    with torch.no_grad():
        once = model.separate_padded(padded, real)
        torch.testing.assert_close(twice.separate_padded(padded, real), model.second_pass(padded, real, once))
        assert (twice(mix) - model(mix)).abs().max() > 1e-4
    with pytest.raises(ValueError, match="second_passes=0"):
        build_from_config({**model.config, "second_passes": 0})


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


def test_onnx_export_matches_pytorch_and_loads_without_the_base_file(tmp_path, one_thread):
    from avss.export import OnnxSeparator, export_onnx

    model = listening_cascade(tmp_path)
    path = export_onnx(model, tmp_path / "cascade.onnx", example_seconds=0.2)
    (tmp_path / "base.pt").unlink()
    onnx_model = OnnxSeparator.load(path)
    prepare, core, finish = model.export_parts()
    for length in (3200, 4011):  # the traced example was 3200 samples; 4011 is padded to the frames
        mix = 0.1 * torch.randn(2, length)
        with torch.no_grad():
            expected = model(mix)
            inputs, state = prepare(mix)
            torch.testing.assert_close(finish(core(*inputs), state), expected)
        torch.testing.assert_close(onnx_model(mix), expected, atol=1e-4, rtol=1e-4)


def deeper_cascade(tmp_path):
    """A trained (listening) cascade saved, and an untrained third stage on it."""
    trained = listening_cascade(tmp_path)
    trained.save_pretrained(tmp_path / "cascade.pt")
    return trained, Cascade(base=trained.config, base_weights=str(tmp_path / "cascade.pt"))


def test_an_untrained_stage_on_a_cascade_runs_the_cascade_with_one_more_second_pass(tmp_path):
    trained, deeper = deeper_cascade(tmp_path)
    twice = build_from_config({**trained.config, "second_passes": 2}).eval()
    twice.load_state_dict(trained.state_dict())
    for length in (3000, 3011):  # also a length the encoder has to pad
        mix = torch.randn(2, length)
        with torch.no_grad():
            torch.testing.assert_close(deeper.eval()(mix), twice(mix), rtol=0, atol=0)
            assert (deeper(mix) - trained.eval()(mix)).abs().max() > 1e-4


def test_only_the_newest_stage_of_a_deeper_cascade_learns(tmp_path):
    trained, deeper = deeper_cascade(tmp_path)
    deeper.train()
    assert not deeper.base.training and not deeper.base.base.training and deeper.second.training
    deeper(torch.randn(2, 3000))[:, 0].pow(2).mean().backward()
    assert all(p.grad is None for p in deeper.base.parameters())
    assert all(p.grad is not None for p in deeper.second.parameters())
    assert deeper.estimate_input.weight.grad.abs().sum() > 0
    for weight_file in ("cascade.pt", "base.pt"):  # a saved deeper cascade holds all its stages
        (tmp_path / weight_file).unlink()
    deeper.save_pretrained(tmp_path / "deeper.pt")
    loaded = Separator.from_pretrained(tmp_path / "deeper.pt")
    mix = torch.randn(1, 2000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), deeper.eval()(mix), rtol=0, atol=0)


def test_refuses_a_base_that_is_not_a_sudormrf():
    with pytest.raises(TypeError, match="SuDoRMRF"):
        Cascade(base=TFMaskNet(n_fft=64, hop=16, dim=8, hidden=8, layers=1).config)


def test_the_experiment_config_builds_an_untrained_cascade_equal_to_its_first_stage():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    root = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(root / "configs"), version_base=None):
        cfg = compose("train", overrides=["experiment=cascade16_dm",
                                          f"model.base_weights={root / 'checkpoints/sudormrf16_grown.pt'}"])
    model = instantiate(cfg.model).eval()
    first_stage = Separator.from_pretrained(root / "checkpoints/sudormrf16_grown.pt").eval()
    mix = torch.randn(1, 8000)
    with torch.no_grad():
        torch.testing.assert_close(model(mix), first_stage(mix), rtol=0, atol=1e-6)


def test_the_cascade_is_level_free_like_its_base(tmp_path):
    # the training mixtures come at random levels: what the second stage hears of the first tracks must not
    # depend on the level (a first version fed the tracks' raw encoder frames)
    model = listening_cascade(tmp_path)
    mix = torch.randn(1, 3000)
    with torch.no_grad():
        torch.testing.assert_close(model(30 * mix), 30 * model(mix), rtol=1e-4, atol=1e-4)


def test_the_trained_cascade_loads_in_one_line_without_its_base_file(monkeypatch, tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # its config names checkpoints/sudormrf16_grown.pt, which must not be read
    model = Separator.from_pretrained(root / "checkpoints" / "cascade16.pt")
    assert isinstance(model, Cascade) and model.estimate_input.weight.abs().max() > 0


def test_a_frozen_base_cascade_checkpoint_fine_tunes_with_its_base_unfrozen_but_not_as_another_model(tmp_path):
    from avss.models.base import load_trained_weights

    trained = listening_cascade(tmp_path)
    trained.save_pretrained(tmp_path / "cascade.pt")
    joint = Cascade(base=trained.base.config, freeze_base=False)
    load_trained_weights(joint, tmp_path / "cascade.pt")
    torch.testing.assert_close(joint.state_dict(), trained.state_dict(), rtol=0, atol=0)
    assert all(p.requires_grad for p in joint.base.parameters())
    other = Cascade(base={**trained.base.config, "blocks": 3})
    with pytest.raises(ValueError, match=r"differs in \['base'\]"):
        load_trained_weights(other, tmp_path / "cascade.pt")
