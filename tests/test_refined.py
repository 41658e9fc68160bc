"""The learned spectral refiner (avss.nn.spectral_refiner) and the two-stage model around it (avss.models.Refined)."""
import numpy as np
import pytest
import torch

from avss.inference.refine import mixture_consistency, spectral_filter
from avss.models import AVConvTasNet, Refined, SuDoRMRF
from avss.models.base import Separator, build_from_config
from avss.nn.consistency import consistent_tracks as consistent, least_squares_gains

REFINER = {"n_fft": 256, "hop": 64, "hidden": 8, "layers": 1}  # 16 ms window at 16 kHz


def tiny_base(seed=0):
    torch.manual_seed(seed)
    return SuDoRMRF(sample_rate=16000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, blocks=1, depth=2)


def saved_base(tmp_path, seed=0):
    base = tiny_base(seed)
    base.save_pretrained(tmp_path / "base.pt")
    return base, str(tmp_path / "base.pt")


def test_consistent_tracks_sum_to_the_mixture_and_undo_gains():
    torch.manual_seed(0)
    clean = torch.randn(3, 2, 800)
    mix = clean.sum(1)
    np.testing.assert_allclose(consistent(clean * torch.tensor([[-2.0], [0.5]]), mix), clean, atol=1e-4)
    noisy = clean + 0.1 * torch.randn_like(clean)
    np.testing.assert_allclose(consistent(noisy, mix).sum(1), mix, atol=1e-4)
    for item in range(3):  # the same as the test-time NumPy version
        np.testing.assert_allclose(consistent(noisy, mix)[item], mixture_consistency(noisy[item].numpy(),
                                                                                      mix[item].numpy()), atol=1e-4)


def test_least_squares_gains_match_a_linear_solve_for_one_two_and_three_tracks():
    torch.manual_seed(0)
    for n_src in (1, 2, 3):
        est = torch.randn(4, n_src, 500, dtype=torch.float64)
        gram, target = est @ est.transpose(1, 2), est @ torch.randn(4, 500, 1, dtype=torch.float64)
        expected = torch.stack([torch.linalg.solve(g, t) for g, t in zip(gram, target[..., 0])])
        torch.testing.assert_close(least_squares_gains(gram, target[..., 0]), expected, rtol=1e-9, atol=1e-12)


def test_untrained_refiner_is_the_hand_made_filter(tmp_path):
    base, path = saved_base(tmp_path)
    model = Refined(base=base.config, base_weights=path, refiner=REFINER).eval()
    mix = 0.1 * torch.randn(2, 4000)
    with torch.no_grad():
        out = model(mix)
        est = base(mix)
    for item in range(2):
        tracks = mixture_consistency(est[item].numpy(), mix[item].numpy())
        expected = spectral_filter(tracks, mix[item].numpy(), 16000, weight=0.7, window_ms=16, power=4.0)
        np.testing.assert_allclose(out[item].numpy(), expected, atol=1e-5)


def test_only_the_refiner_learns_and_the_frozen_base_stays_in_eval_mode(tmp_path):
    base, path = saved_base(tmp_path)
    model = Refined(base=base.config, base_weights=path, refiner=REFINER).train()
    assert model.refiner.training and not model.base.training
    model(0.1 * torch.randn(2, 3000)).pow(2).mean().backward()
    assert all(p.grad is None for p in model.base.parameters())
    assert model.refiner.correction.weight.grad.abs().sum() > 0 and model.refiner.weight_logit.grad is not None
    assert model.frame_hop == base.frame_hop == 8


def test_checkpoint_round_trip_needs_no_base_file(tmp_path):
    base, path = saved_base(tmp_path)
    model = Refined(base=base.config, base_weights=path, refiner=REFINER)
    torch.nn.init.normal_(model.refiner.correction.weight, std=0.01)  # a refiner that differs from its start
    model.save_pretrained(tmp_path / "refined.pt")
    (tmp_path / "base.pt").unlink()  # the saved two-stage model holds the base's weights itself
    loaded = Separator.from_pretrained(tmp_path / "refined.pt")
    mix = 0.1 * torch.randn(1, 3000)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(mix), model.eval()(mix), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="base.pt"):  # a fresh model does read base_weights
        Refined(base=base.config, base_weights=path, refiner=REFINER)


def test_mismatched_or_unsuitable_bases_are_refused(tmp_path):
    base, path = saved_base(tmp_path)
    other = dict(base.config, blocks=2)
    with pytest.raises(ValueError, match="different model than `base`"):
        Refined(base=other, base_weights=path, refiner=REFINER)
    with pytest.raises(ValueError, match="sample_rate=8000 differs"):
        Refined(base=base.config, sample_rate=8000, refiner=REFINER)
    audio_visual = AVConvTasNet(n_filters=16, kernel_size=32, bottleneck=8, hidden=16, skip=8, blocks=1, repeats=1, fuse_at=0,
                                visual_dim=8, lip_frontend={"kind": "small", "width": 4})
    with pytest.raises(ValueError, match="single-channel, audio-only separation"):
        Refined(base=audio_visual.config, refiner=REFINER)


def test_the_composed_config_builds_on_the_shipped_base():
    from pathlib import Path

    from avss.utils.benchmark import model_config

    root = Path(__file__).resolve().parents[1]
    config = model_config("sudormrf_small_refined", root / "configs" / "model")
    assert config["_recursive_"] is False  # Hydra's own key, which build_from_config must not pass on
    config["base_weights"] = str(root / config["base_weights"])
    model = build_from_config(config)
    shipped = Separator.from_pretrained(config["base_weights"])
    assert isinstance(model, Refined) and model.base.config == shipped.config
    for name, value in shipped.state_dict().items():
        assert torch.equal(model.base.state_dict()[name], value), name
