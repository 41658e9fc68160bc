"""Weight averaging of fine-tuned checkpoints of one model (scripts/average_checkpoints.py)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avss.models import Separator, SuDoRMRF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from average_checkpoints import average_state_dicts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed, blocks=2):
    torch.manual_seed(seed)
    return SuDoRMRF(sample_rate=16000, n_filters=8, kernel_size=16, bottleneck=4, hidden=8, blocks=blocks, depth=2)


def test_weighted_mean_of_floats_and_first_member_for_integers():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 7.0]), "n": torch.tensor(9)}
    equal = average_state_dicts([a, b])
    torch.testing.assert_close(equal["w"], torch.tensor([2.0, 5.0]))
    assert equal["n"].item() == 5
    weighted = average_state_dicts([a, b], [3, 1])
    torch.testing.assert_close(weighted["w"], torch.tensor([1.5, 4.0]))
    with pytest.raises(ValueError, match="one positive-sum weight per member"):
        average_state_dicts([a, b], [1])
    with pytest.raises(ValueError, match="different parameters"):
        average_state_dicts([a, {"w": a["w"]}])


def test_script_writes_the_average_and_refuses_different_models(tmp_path):
    first, second = tiny(0), tiny(1)
    first.save_pretrained(tmp_path / "a.pt", step=1)
    second.save_pretrained(tmp_path / "b.pt", step=2)
    script = [sys.executable, str(ROOT / "scripts" / "average_checkpoints.py")]
    done = subprocess.run(script + [str(tmp_path / "soup.pt"), str(tmp_path / "a.pt"), str(tmp_path / "b.pt")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    soup = Separator.from_pretrained(tmp_path / "soup.pt")
    key = "masker.head.1.weight"
    expected = (first.state_dict()[key] + second.state_dict()[key]) / 2
    torch.testing.assert_close(soup.state_dict()[key], expected)
    assert [member["step"] for member in soup.pretrained_info["averaged"]] == [1, 2]
    tiny(2, blocks=3).save_pretrained(tmp_path / "c.pt")
    refused = subprocess.run(script + [str(tmp_path / "x.pt"), str(tmp_path / "a.pt"), str(tmp_path / "c.pt")],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "a different model config" in refused.stderr
    assert not (tmp_path / "x.pt").exists()
