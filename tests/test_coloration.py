import numpy as np
import pytest
from scipy.signal import freqz

from avss.data.coloration import peaking_biquad, random_coloration, tilt_filter


def response_db(b, a, freqs, sample_rate=16000):
    return 20 * np.log10(np.abs(freqz(b, a, freqs, fs=sample_rate)[1]))


def test_peaking_biquad_has_its_gain_at_its_centre_and_unity_far_away():
    db = response_db(*peaking_biquad(1000.0, 6.0, 1.0, 16000), [0.0, 1000.0, 7999.0])
    np.testing.assert_allclose(db, [0.0, 6.0, 0.0], atol=1e-3)
    cut = response_db(*peaking_biquad(300.0, -4.0, 2.0, 16000), [300.0])
    np.testing.assert_allclose(cut, [-4.0], atol=1e-3)
    with pytest.raises(ValueError, match="Nyquist"):
        peaking_biquad(8000.0, 3.0, 1.0, 16000)


def test_tilt_is_centred_on_its_pivot():
    db = response_db(*tilt_filter(6.0, 16000), [1.0, 1000.0, 7900.0])
    np.testing.assert_allclose(db, [-3.0, 0.0, 3.0], atol=0.1)


def test_random_coloration_is_bounded_seeded_and_varied():
    x = np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32)
    a = random_coloration(x, np.random.default_rng(1), 16000)
    assert a.shape == x.shape and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, random_coloration(x, np.random.default_rng(1), 16000))
    assert not np.allclose(a, random_coloration(x, np.random.default_rng(2), 16000))
    # 3 sections of at most 6 dB and a tilt of at most +-3 dB: the level cannot move by more than 21 dB
    ratio_db = 10 * np.log10(np.mean(a ** 2) / np.mean(x ** 2))
    assert abs(ratio_db) < 21.0 and not np.allclose(a, x, atol=1e-3)
