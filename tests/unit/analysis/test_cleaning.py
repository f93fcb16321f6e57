"""posepipe.analysis.cleaning: the zero-lag Butterworth keeps a 2 Hz motion and removes most of
the white noise on it, with no phase lag; it refuses clearly what it cannot filter; gap filling
fills gaps up to the maximum and never a longer one, and flags what it filled."""

from __future__ import annotations

import numpy as np
import pytest
from posepipe.analysis.cleaning import (
    CleaningOptions,
    butterworth,
    fill_gaps,
    min_filter_length,
    sample_rate,
)

SECONDS = 20.0


def _sine_with_noise(fps: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(int(SECONDS * fps)) / fps
    clean = np.sin(2 * np.pi * 2.0 * t)
    noise = np.random.default_rng(seed).normal(0.0, 0.3, len(t))
    return t, clean, noise


def _amplitude_and_phase(t: np.ndarray, values: np.ndarray, hz: float) -> tuple[float, float]:
    """Least-squares amplitude and phase (radians) of the ``hz`` component."""
    design = np.column_stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)])
    (a, b), *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(np.hypot(a, b)), float(np.arctan2(b, a))


@pytest.mark.parametrize("fps", [60.0, 120.0])
def test_the_default_butterworth_keeps_2_hz_and_cuts_the_noise_with_no_lag(fps: float) -> None:
    """Defaults: 4th order, 6 Hz. White noise spreads its power evenly up to half the sample rate;
    at 60 frames/s and above, 6 Hz leaves less than a fifth of it."""
    t, clean, noise = _sine_with_noise(fps)
    filtered, report = butterworth(clean + noise, t)
    assert report.status == "all"
    amplitude, phase = _amplitude_and_phase(t, filtered, 2.0)
    assert amplitude == pytest.approx(1.0, rel=0.05)
    assert abs(phase) < np.radians(1.0)  # zero lag: the 2 Hz component is not shifted
    middle = slice(int(fps), -int(fps))  # away from the ends, where the edge padding acts
    residual_noise = filtered[middle] - butterworth(clean, t)[0][middle]
    assert np.mean(residual_noise**2) <= 0.2 * np.mean(noise[middle] ** 2)
    # A causal filter of the same order would lag: the forward-backward filter does not.
    lag = np.argmax(np.correlate(filtered - filtered.mean(), clean, "full")) - (len(t) - 1)
    assert lag == 0


def test_at_25_frames_a_second_the_2_hz_motion_is_kept_and_the_noise_above_6_hz_goes() -> None:
    t, clean, noise = _sine_with_noise(25.0)
    filtered, report = butterworth(clean + noise, t)
    assert report.status == "all"
    amplitude, phase = _amplitude_and_phase(t, filtered, 2.0)
    assert amplitude == pytest.approx(1.0, rel=0.05)
    assert abs(phase) < np.radians(1.0)
    spectrum = np.abs(np.fft.rfft(filtered - clean)) ** 2
    frequencies = np.fft.rfftfreq(len(t), 1 / 25.0)
    noise_spectrum = np.abs(np.fft.rfft(noise)) ** 2
    above = frequencies > 8.0
    assert spectrum[above].sum() <= 0.1 * noise_spectrum[above].sum()


def test_a_cutoff_at_or_above_nyquist_is_refused_with_the_reason() -> None:
    t = np.arange(100) / 10.0  # vtest.avi: 10 frames/s, Nyquist 5 Hz
    values = np.sin(t)
    filtered, report = butterworth(values, t, cutoff_hz=6.0)
    assert report.status == "none"
    assert report.notes == [
        "not filtered: the 6 Hz cut-off is not below the Nyquist frequency of 10 samples/s (5 Hz)"
    ]
    np.testing.assert_array_equal(filtered, values)
    assert butterworth(values, t, cutoff_hz=3.0)[1].status == "all"


def test_stretches_too_short_for_the_filter_are_left_as_they_are_and_reported() -> None:
    fps = 30.0
    shortest = min_filter_length(4)
    assert shortest == 10
    t = np.arange(60) / fps
    values = np.sin(2 * np.pi * t) + np.random.default_rng(1).normal(0, 0.1, len(t))
    values[shortest - 1] = np.nan  # a first stretch one sample too short, then a long one
    filtered, report = butterworth(values, t)
    assert report.status == "partly"
    np.testing.assert_array_equal(filtered[: shortest - 1], values[: shortest - 1])
    assert not np.allclose(filtered[shortest:], values[shortest:])
    assert "too short for an order-4 Butterworth" in report.notes[0]
    assert butterworth(values[: shortest - 1], t[: shortest - 1])[1].status == "none"


def test_gaps_up_to_the_maximum_are_filled_and_flagged_longer_ones_never() -> None:
    fps = 10.0
    t = np.arange(40) / fps
    values = 2.0 * t + 1.0
    holes = values.copy()
    holes[5:10] = np.nan  # 5 samples: 0.5 s unobserved
    holes[20:26] = np.nan  # 6 samples: 0.6 s
    holes[:2] = np.nan  # before the first observation
    filled, flags = fill_gaps(holes, t, max_gap_s=0.5)
    np.testing.assert_allclose(filled[5:10], values[5:10])
    assert flags[5:10].all()
    assert np.isnan(filled[20:26]).all()
    assert not flags[20:26].any()
    assert np.isnan(filled[:2]).all()
    assert not flags[:2].any()
    assert flags.sum() == 5
    # Linear and cubic agree on a straight line; columns are filled independently.
    two = np.column_stack([holes, holes[::-1]])
    cubic, cubic_flags = fill_gaps(two, t, max_gap_s=0.5, interpolation="cubic")
    np.testing.assert_allclose(cubic[5:10, 0], values[5:10])
    assert cubic_flags[:, 1].sum() == 5


def test_frame_timestamps_give_the_sample_rate_and_options_are_checked() -> None:
    assert sample_rate(np.arange(10) / 25.0) == pytest.approx(25.0)
    assert sample_rate([0.0]) == 0.0
    with pytest.raises(ValueError, match="even"):
        CleaningOptions(order=3)
    with pytest.raises(ValueError, match="cut-off"):
        CleaningOptions(cutoff_hz=0.0)
