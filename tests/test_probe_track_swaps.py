"""Window-by-window re-assignment of output tracks (scripts/probe_track_swaps.py)."""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from probe_track_swaps import window_oracle_tracks  # noqa: E402

from avss.metrics.separation import best_permutation, si_snr_improvement  # noqa: E402


def test_a_swap_halfway_is_undone_by_windows_that_fit_it():
    rng = np.random.default_rng(0)
    refs = rng.standard_normal((2, 8000)).astype(np.float32)
    mix = refs.sum(0)
    est = refs.copy()
    est[:, 4000:] = refs[::-1, 4000:]  # the tracks swap speakers halfway
    est *= np.array([[0.5], [2.0]], dtype=np.float32)  # and have arbitrary levels
    perm, _ = best_permutation(est, refs)
    one_permutation = si_snr_improvement(est[list(perm)], refs, mix).mean()
    assert one_permutation < 5.0
    stitched = window_oracle_tracks(est, refs, 2000)
    assert si_snr_improvement(stitched, refs, mix).mean() > 40.0
    # windows straddling the swap cannot undo it
    straddling = window_oracle_tracks(est, refs, 8000)
    assert si_snr_improvement(straddling, refs, mix).mean() < 5.0


def test_correct_tracks_are_kept_in_their_order():
    rng = np.random.default_rng(1)
    refs = rng.standard_normal((2, 3000)).astype(np.float32)
    est = refs[::-1] + 0.01 * rng.standard_normal((2, 3000)).astype(np.float32)
    stitched = window_oracle_tracks(est, refs, 500)
    np.testing.assert_allclose(stitched, refs, atol=0.05)
    assert stitched.dtype == np.float32 and stitched.shape == refs.shape
