"""scripts/probe_mask_dynamics.py: the masks' time variation tells a fixed filter from masks that follow the mix."""
from pathlib import Path

import pytest
import torch
from conftest import load_script

from avss.nn.stft import STFTEncoder

REPO = Path(__file__).resolve().parents[1]


def test_a_fixed_filter_has_no_time_variation_and_frame_by_frame_masks_have_all_of_it():
    script = load_script("probe_mask_dynamics")
    torch.manual_seed(0)
    fixed = torch.rand(2, 2, 9, 1).expand(2, 2, 9, 50)  # one gain per bin, the same in every frame
    assert script.time_variation(fixed) == pytest.approx(0.0, abs=1e-6)
    switching = torch.rand(2, 2, 1, 50).expand(2, 2, 9, 50)  # every bin changes with the frame, no bin differs
    assert script.time_variation(switching) == pytest.approx(1.0, abs=0.05)
    mixed = fixed + switching
    assert 0.2 < script.time_variation(mixed) < 0.8


def test_ideal_ratio_masks_share_each_bin_between_the_sources():
    script = load_script("probe_mask_dynamics")
    torch.manual_seed(1)
    sources = torch.randn(2, 4000)
    masks = load_script("oracle_masks").ideal_masks(STFTEncoder(256, 64), sources)["irm"][:, None]
    assert masks.shape == (2, 1, 129, 63)
    torch.testing.assert_close(masks.sum(0), torch.ones(1, 129, 63))
    assert script.time_variation(masks) > 0.5  # white noise sources trade bins frame by frame


def test_a_time_domain_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    script = load_script("probe_mask_dynamics")
    assert script.main([str(REPO / "checkpoints" / "convtasnet_small_dm.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an STFT-masking model" in err and "convtasnet_small_dm.pt" in err
