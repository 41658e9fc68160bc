"""Function-preserving growth of SuDoRM-RF (avss.models.growth) and its command-line wrapper."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avss.losses import SeparationLoss
from avss.models import Separator, SuDoRMRF
from avss.models.growth import deepen, extend_pyramid

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def trained_tiny(seed=0):
    """A tiny model whose blocks all have non-zero outputs (a fresh one would already be nearly the identity)."""
    torch.manual_seed(seed)
    model = SuDoRMRF(sample_rate=16000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, blocks=2, depth=3)
    with torch.no_grad():
        for block in model.masker.blocks:
            block.project[-1].weight.normal_(0, 0.5)
    return model.eval()


def test_deeper_model_computes_the_same_function():
    model = trained_tiny()
    grown = deepen(model, 6)
    assert len(grown.masker.blocks) == 6 and grown.config["blocks"] == 6
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 3000)
    reference = model(x)
    torch.testing.assert_close(grown(x), reference, rtol=0, atol=1e-6)
    assert reference.abs().max() > 0


def test_copies_follow_their_block_and_learn_from_the_first_step():
    model = trained_tiny()
    grown = deepen(model, 4).train()
    trained, copy_ = grown.masker.blocks[0], grown.masker.blocks[1]
    torch.testing.assert_close(copy_.expand[0].weight, model.masker.blocks[0].expand[0].weight)
    assert copy_.project[-1].weight.abs().max() == 0 and trained.project[-1].weight.abs().max() > 0
    optimiser = torch.optim.SGD(grown.parameters(), lr=0.1)
    mix, sources = torch.randn(2, 1600), torch.randn(2, 2, 1600)
    for _ in range(2):
        optimiser.zero_grad()
        SeparationLoss()(grown(mix), sources)[0].backward()
        optimiser.step()
    assert copy_.project[-1].weight.abs().max() > 0
    assert not torch.equal(copy_.expand[0].weight, model.masker.blocks[0].expand[0].weight)


def test_block_counts_that_are_not_multiples_are_refused():
    with pytest.raises(ValueError, match="multiple of the model's 2 blocks"):
        deepen(trained_tiny(), 5)
    with pytest.raises(TypeError, match="SuDoRMRF"):
        deepen(torch.nn.Linear(2, 2), 4)


def test_coarser_levels_keep_the_function_and_start_learning():
    model = trained_tiny()
    grown = extend_pyramid(model, 5)
    assert grown.config["depth"] == 5 and all(len(block.levels) == 5 for block in grown.masker.blocks)
    x = torch.randn(2, 3000)
    torch.testing.assert_close(grown(x), model(x), rtol=0, atol=1e-6)
    new_gain = grown.masker.blocks[0].levels[3][-1].weight
    assert new_gain.abs().max() == 0
    grown.train()
    optimiser = torch.optim.SGD(grown.parameters(), lr=0.1)
    optimiser.zero_grad()
    SeparationLoss()(grown(torch.randn(2, 1600)), torch.randn(2, 2, 1600))[0].backward()
    optimiser.step()
    assert new_gain.abs().max() > 0
    started = extend_pyramid(model, 4, start_gain=0.5).masker.blocks[0]
    torch.testing.assert_close(started.levels[3][0].weight, started.levels[2][0].weight)
    torch.testing.assert_close(started.levels[3][-1].weight, 0.5 * started.levels[2][-1].weight)
    assert not torch.allclose(extend_pyramid(model, 4, start_gain=0.5)(x), model(x), atol=1e-4)
    torch.manual_seed(1)
    channel_norm = SuDoRMRF(sample_rate=16000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, blocks=1,
                            depth=2, norm="cLN").eval()
    torch.testing.assert_close(extend_pyramid(channel_norm, 3)(x), channel_norm(x), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="at least the model's 3 pyramid levels"):
        extend_pyramid(model, 2)


def test_script_writes_a_checkpoint_that_loads_with_its_lineage(tmp_path):
    model = trained_tiny()
    model.save_pretrained(tmp_path / "small.pt", step=123)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "grow_checkpoint.py"), str(tmp_path / "small.pt"),
                           str(tmp_path / "deep.pt"), "--blocks", "4"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "difference" in done.stdout
    deep = Separator.from_pretrained(tmp_path / "deep.pt")
    assert deep.config["blocks"] == 4
    assert deep.pretrained_info["step"] == 123 and deep.pretrained_info["blocks_before"] == 2
    x = torch.randn(1, 2000)
    torch.testing.assert_close(deep(x), model(x), rtol=0, atol=1e-6)


def test_script_grows_blocks_and_depth_together_and_needs_one_of_them(tmp_path):
    model = trained_tiny()
    model.save_pretrained(tmp_path / "small.pt")
    script = [sys.executable, str(ROOT / "scripts" / "grow_checkpoint.py"), str(tmp_path / "small.pt"),
              str(tmp_path / "grown.pt")]
    done = subprocess.run(script + ["--blocks", "4", "--depth", "4"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    grown = Separator.from_pretrained(tmp_path / "grown.pt")
    assert (grown.config["blocks"], grown.config["depth"]) == (4, 4)
    assert grown.pretrained_info["depth_before"] == 3
    x = torch.randn(1, 2000)
    torch.testing.assert_close(grown(x), model(x), rtol=0, atol=1e-6)
    refused = subprocess.run(script, capture_output=True, text=True)
    assert refused.returncode != 0 and "give --blocks, --depth or both" in refused.stderr
