import math

import torch

from avss.losses import SeparationLoss, best_permutation, compressed_spectral_snr, si_snr, snr


def test_si_snr_matches_closed_form_and_is_scale_invariant():
    torch.manual_seed(0)
    ref = torch.randn(1000)
    noise = torch.randn(1000)
    noise = noise - (noise @ ref) / (ref @ ref) * ref  # orthogonal to ref
    noise = noise * (ref.norm() / noise.norm()) / 10  # 20 dB below
    est = ref + noise
    assert math.isclose(float(si_snr(est, ref)), 20.0, abs_tol=0.05)
    assert math.isclose(float(si_snr(3.7 * est, ref)), float(si_snr(est, ref)), abs_tol=1e-3)
    assert float(snr(3.7 * est, ref)) < 0  # SNR is not scale invariant


def test_pit_finds_the_swapped_order():
    torch.manual_seed(1)
    ref = torch.randn(3, 2, 800)
    est = ref.flip(1) + 0.01 * torch.randn_like(ref)
    score, perm = best_permutation(est, ref)
    assert perm.tolist() == [[1, 0]] * 3
    assert (score > 30).all()
    loss, reordered = SeparationLoss("si_snr", pit=True)(est, ref)
    assert float(loss) < -30
    torch.testing.assert_close(reordered, ref, atol=0.05, rtol=0)


def test_without_pit_the_order_is_kept():
    torch.manual_seed(2)
    ref = torch.randn(2, 2, 400)
    loss, _ = SeparationLoss("snr", pit=False)(ref.flip(1), ref)
    assert float(loss) > 0  # wrong order is penalised, not fixed


def test_unknown_loss_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="unknown loss"):
        SeparationLoss("l1")


def test_compressed_spectral_snr_falls_with_noise_and_sees_gain_and_sign():
    torch.manual_seed(3)
    ref = torch.randn(2, 8000)
    noisy = [float(compressed_spectral_snr(ref + level * torch.randn_like(ref), ref).mean()) for level in
             (0.01, 0.1, 1.0)]
    assert noisy[0] > noisy[1] > noisy[2]
    assert float(compressed_spectral_snr(ref, ref).min()) > 60
    # unlike SI-SNR it is not blind to level or sign: the masks must give each track its level and phase
    assert float(compressed_spectral_snr(3.0 * ref, ref).max()) < 10
    assert float(compressed_spectral_snr(-ref, ref).max()) < 0
    assert compressed_spectral_snr(ref[:, None], ref[None]).shape == (2, 2)  # pairwise, as PIT uses it


def test_the_spectral_loss_finds_the_swapped_order():
    torch.manual_seed(4)
    ref = torch.randn(2, 2, 4000)
    loss, reordered = SeparationLoss("si_snr+spectral")(ref.flip(1) + 0.01 * torch.randn_like(ref), ref)
    assert float(loss) < -30
    torch.testing.assert_close(reordered, ref, atol=0.05, rtol=0)
