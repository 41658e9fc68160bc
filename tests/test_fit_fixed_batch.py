"""scripts/fit_fixed_batch.py: a model from scratch fits one fixed batch (the check that rules out learning bugs)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "librispeech" / "train-clean-100"


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_tfmask_fits_a_fixed_batch_within_a_few_steps():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_fixed_batch.py"), "--model", "tfmask_blstm",
                           "--steps", "12", "--batch", "2", "--every", "12", "--threads", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = [float(v) for v in re.findall(r"train SI-SNRi\s+(-?[\d.]+) dB", done.stdout)]
    assert len(scores) == 2, done.stdout
    assert scores[1] > scores[0] + 10.0, done.stdout


def test_model_overrides_reach_the_config():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_fixed_batch.py"), "--model", "band_split",
                           "--steps", "0", "model.no_such_key=1"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode != 0 and "model.no_such_key" in done.stderr, done.stderr[-2000:]
