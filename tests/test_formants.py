import numpy as np
import pytest
from scipy.signal import lfilter

from avss.data.formants import shift_formants, spectral_envelope, warp_frequency_axis

RATE = 16000


def vowel(f0=120.0, formant=700.0, seconds=1.0):
    """A pulse train at f0 through one resonance at `formant` Hz: a one-formant synthetic vowel."""
    n = int(seconds * RATE)
    pulses = np.zeros(n)
    pulses[::int(RATE / f0)] = 1.0
    r, w = 0.97, 2 * np.pi * formant / RATE
    return lfilter([1.0], [1.0, -2 * r * np.cos(w), r * r], pulses)


def envelope_peak_hz(x, n_fft=512):
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::128] * np.hanning(n_fft)
    log_mag = np.log(np.abs(np.fft.rfft(frames, axis=-1)) + 1e-8).mean(0)
    env = spectral_envelope(log_mag, n_fft, lifter=24)
    return np.argmax(env) * RATE / n_fft


def period_samples(x):
    ac = np.correlate(x, x, mode="full")[len(x) - 1:]
    low = int(RATE / 400)  # search pitch periods of 40-400 Hz voices
    return low + int(np.argmax(ac[low:int(RATE / 40)]))


@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_formants_move_by_the_factor_and_the_pitch_stays(factor):
    x = vowel()
    y = shift_formants(x, factor, RATE)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert envelope_peak_hz(y) == pytest.approx(factor * envelope_peak_hz(x), rel=0.06)
    assert period_samples(y) == period_samples(x)  # 133 samples: 120 Hz


def test_factor_one_is_the_identity_and_out_of_range_factors_are_refused():
    x = vowel()
    np.testing.assert_array_equal(shift_formants(x, 1.0, RATE), x.astype(np.float32))
    with pytest.raises(ValueError, match="factor"):
        shift_formants(x, 3.0, RATE)


def test_a_tiny_shift_changes_a_signal_only_slightly():
    """The STFT path itself is transparent: a 1.001 shift leaves the waveform within -40 dB of the input."""
    x = np.random.default_rng(0).standard_normal(RATE)
    y = shift_formants(x, 1.001, RATE)
    assert np.sum((y - x) ** 2) / np.sum(x ** 2) < 1e-4


def test_warp_reads_values_at_f_over_factor():
    values = np.arange(11, dtype=float)  # value = bin index
    np.testing.assert_allclose(warp_frequency_axis(values, 2.0), np.arange(11) / 2.0)
    np.testing.assert_allclose(warp_frequency_axis(values, 0.5)[:6], [0, 2, 4, 6, 8, 10])
    assert warp_frequency_axis(values, 0.5)[-1] == 10  # past the top bin: the edge value
