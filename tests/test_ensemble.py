"""Averaging trained separators (avss.models.Ensemble) and its command-line builder (scripts/make_ensemble.py)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avss.models import AVConvTasNet, ConvTasNet, Ensemble, Separator, SuDoRMRF
from avss.models.ensemble import align_tracks

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return SuDoRMRF(**{"sample_rate": 16000, "n_filters": 16, "kernel_size": 16, "bottleneck": 8, "hidden": 16,
                       "blocks": 1, "depth": 2, **kw}).eval()


def test_align_tracks_undoes_order_sign_and_gain_per_item():
    torch.manual_seed(0)
    reference = torch.randn(3, 2, 500)
    est = reference.clone()
    est[0] = reference[0, [1, 0]] * torch.tensor([[-2.0], [0.5]])  # swapped, one negated, both rescaled
    est[1] = reference[1] * torch.tensor([[3.0], [-1.0]])  # kept order
    est[2] = reference[2, [1, 0]]
    torch.testing.assert_close(align_tracks(reference, est), reference, rtol=1e-5, atol=1e-5)


def test_align_tracks_leaves_silent_tracks_silent():
    reference = torch.randn(1, 2, 400)
    est = torch.stack([torch.zeros(400), reference[0, 0]])[None]
    aligned = align_tracks(reference, est)
    torch.testing.assert_close(aligned[0, 0], reference[0, 0], rtol=1e-5, atol=1e-5)
    assert aligned[0, 1].abs().max() == 0


def test_members_returning_swapped_tracks_average_to_the_first():
    first = tiny()
    swapped = tiny()
    ensemble = Ensemble(members=[first.config, swapped.config]).eval()
    ensemble.members[0].load_state_dict(first.state_dict())
    ensemble.members[1].load_state_dict(first.state_dict())
    original_forward = ensemble.members[1].forward
    ensemble.members[1].forward = lambda mix, mouths=None: -2.0 * original_forward(mix).flip(1)
    mix = torch.randn(2, 3000)
    with torch.no_grad():
        torch.testing.assert_close(ensemble(mix), first(mix), rtol=1e-4, atol=1e-5)


def test_weights_blend_the_members():
    a, b = tiny(0), tiny(1)
    mix = torch.randn(1, 2000)
    ensemble = Ensemble(members=[a.config, b.config], weights=[3, 1]).eval()
    ensemble.members[0].load_state_dict(a.state_dict())
    ensemble.members[1].load_state_dict(b.state_dict())
    with torch.no_grad():
        expected = 0.75 * a(mix) + 0.25 * align_tracks(a(mix), b(mix))
        torch.testing.assert_close(ensemble(mix), expected, rtol=1e-5, atol=1e-6)
        assert (ensemble(mix) - a(mix)).abs().max() > 1e-4


def test_built_from_member_weights_and_saved_ensemble_loads_without_them(tmp_path):
    a, b = tiny(0), tiny(1, blocks=2)
    a.save_pretrained(tmp_path / "a.pt")
    b.save_pretrained(tmp_path / "b.pt")
    built = Ensemble(members=[a.config, b.config], member_weights=[str(tmp_path / "a.pt"), str(tmp_path / "b.pt")])
    mix = torch.randn(1, 2500)
    with torch.no_grad():
        torch.testing.assert_close(built.eval().members[1](mix), b(mix))
    built.save_pretrained(tmp_path / "ens.pt")
    (tmp_path / "a.pt").unlink()
    (tmp_path / "b.pt").unlink()
    loaded = Separator.from_pretrained(tmp_path / "ens.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), built(mix))
    assert loaded.frame_hop == a.frame_hop and loaded.sample_rate == 16000 and loaded.n_src == 2


def test_make_ensemble_script_writes_a_checkpoint_that_separates(tmp_path):
    a, b = tiny(0), tiny(1)
    a.save_pretrained(tmp_path / "a.pt", step=7)
    b.save_pretrained(tmp_path / "b.pt")
    target = tmp_path / "ens.pt"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_ensemble.py"), str(target), str(tmp_path / "a.pt"),
                    str(tmp_path / "b.pt"), "--weights", "1", "3"], check=True, capture_output=True)
    loaded = Separator.from_pretrained(target)
    assert isinstance(loaded, Ensemble) and loaded.weights.tolist() == [0.25, 0.75]
    assert loaded.pretrained_info["members"][0] == {"checkpoint": str(tmp_path / "a.pt"), "step": 7}
    out = loaded.separate(0.1 * torch.randn(8000).numpy(), 16000)
    assert out.shape == (2, 8000) and abs(out).max() > 0


def test_rejects_mismatched_or_unsuitable_members(tmp_path):
    a = tiny()
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble(members=[a.config])
    with pytest.raises(ValueError, match="members\\[1\\] runs at 8000 Hz"):
        Ensemble(members=[a.config, tiny(sample_rate=8000).config])
    visual = AVConvTasNet(n_filters=16, kernel_size=16, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=1,
                          visual_dim=8, lip_frontend={"kind": "small", "width": 4}, fuse_at=0)
    with pytest.raises(ValueError, match="members\\[1\\].*audio-only separation"):
        Ensemble(members=[a.config, visual.config])
    with pytest.raises(ValueError, match="weights must be 2 non-negative"):
        Ensemble(members=[a.config, a.config], weights=[1, -1])
    other = ConvTasNet(sample_rate=16000, n_filters=16, bottleneck=8, hidden=16, skip=8, blocks=1, repeats=1)
    other.save_pretrained(tmp_path / "other.pt")
    a.save_pretrained(tmp_path / "a.pt")
    with pytest.raises(ValueError, match="member_weights\\[1\\].*different model"):
        Ensemble(members=[a.config, a.config], member_weights=[str(tmp_path / "a.pt"), str(tmp_path / "other.pt")])


def test_the_shipped_checkpoint_is_the_cascade_and_the_band_split_blended_8_to_2(monkeypatch, tmp_path):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # the members' configs name checkpoint files, which must not be read
    shipped = Separator.from_pretrained(root / "checkpoints" / "default.pt")
    assert [type(member).__name__ for member in shipped.members] == ["Cascade", "BandSplitRNN"]
    torch.testing.assert_close(shipped.weights, torch.tensor([0.8, 0.2]))
    for member, name in zip(shipped.members, ["cascade16.pt", "band_split_magnitude_dm.pt"]):
        alone = Separator.from_pretrained(root / "checkpoints" / name)
        torch.testing.assert_close(member.state_dict(), alone.state_dict(), rtol=0, atol=0)
