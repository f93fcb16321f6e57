"""Cleaning a person's trajectories, as explicit steps that can each be switched off
(:class:`CleaningOptions`):

1. **Gap filling.** A run of missing samples (the person not found, or a landmark not seen) no
   longer than ``max_gap_s`` is interpolated from the samples either side (linear, or a cubic
   spline through the whole observed series); longer gaps, and missing samples before the first
   or after the last observation, stay missing. Every filled sample is flagged, so that an export
   never passes it off as observed.
2. **Zero-lag Butterworth low-pass.** SciPy's ``butter`` and ``sosfiltfilt``: a filter of half the
   ``order`` run forwards and backwards, which gives the ``order`` asked for (4 by default) with
   no phase lag, as Pose2Sim and Sports2D do. The sample rate is the frames' own (the median
   interval between their timestamps), and ``cutoff_hz`` defaults to 6 Hz, Pose2Sim's documented
   example. Each stretch of samples without a gap is filtered on its own; a stretch too short
   for the filter (:func:`min_filter_length` samples) is left as it is and reported, and so is a
   cut-off at or above the Nyquist frequency (half the sample rate), which no low-pass can apply.

The One Euro filter for live display is :mod:`posepipe.postprocess.smoothing`; it runs inside
``posepipe video`` before results are written, and these steps run on results.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Interpolation = Literal["linear", "cubic"]


@dataclass(frozen=True)
class CleaningOptions:
    """The cleaning steps and their settings (each step switchable)."""

    fill_gaps: bool = True
    max_gap_s: float = 0.5
    interpolation: Interpolation = "linear"
    butterworth: bool = True
    order: int = 4
    cutoff_hz: float = 6.0

    def __post_init__(self) -> None:
        if self.max_gap_s < 0:
            raise ValueError(f"max_gap_s must be 0 or more, not {self.max_gap_s}")
        if self.interpolation not in ("linear", "cubic"):
            raise ValueError(f"interpolation must be linear or cubic, not {self.interpolation!r}")
        if self.order < 2 or self.order % 2:
            raise ValueError(f"the Butterworth order must be even and at least 2, not {self.order}")
        if not self.cutoff_hz > 0:
            raise ValueError(f"the cut-off must be above 0 Hz, not {self.cutoff_hz}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fill_gaps": self.fill_gaps,
            "max_gap_s": self.max_gap_s,
            "interpolation": self.interpolation,
            "butterworth": self.butterworth,
            "order": self.order,
            "cutoff_hz": self.cutoff_hz,
        }


@dataclass
class FilterReport:
    """What the Butterworth step did to a series: how many of its finite values it filtered and
    left unfiltered, and ``notes`` saying why anything was not filtered."""

    filtered_values: int = 0
    unfiltered_values: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``all``, ``partly`` or ``none`` of the values filtered."""
        if not self.unfiltered_values:
            return "all" if self.filtered_values else "none"
        return "partly" if self.filtered_values else "none"


def sample_rate(t: npt.ArrayLike) -> float:
    """Samples per second from timestamps in seconds: one over the median interval (0 with fewer
    than two samples)."""
    times = np.asarray(t, dtype=np.float64)
    if len(times) < 2:
        return 0.0
    interval = float(np.median(np.diff(times)))
    return 1.0 / interval if interval > 0 else 0.0


def fill_gaps(
    values: npt.ArrayLike, t: npt.ArrayLike, max_gap_s: float, interpolation: Interpolation = "linear"
) -> tuple[FloatArray, BoolArray]:
    """``values`` (samples, ...) with each gap of NaN no longer than ``max_gap_s`` interpolated,
    column by column, and a mask of the samples filled.

    A gap's length is the time it leaves unobserved: its number of samples times the median
    interval between samples. Gaps at either end are never filled (nothing to interpolate to)."""
    data = np.array(values, dtype=np.float64)
    times = np.asarray(t, dtype=np.float64)
    flat = data.reshape(len(data), -1)
    filled = np.zeros(flat.shape, dtype=bool)
    rate = sample_rate(times)
    if rate <= 0:
        return data, filled.reshape(data.shape)
    max_samples = int(np.floor(max_gap_s * rate + 1e-9))
    for column in range(flat.shape[1]):
        series = flat[:, column]
        seen = np.isfinite(series)
        if seen.sum() < 2 or seen.all():
            continue
        gap = _fillable(seen, max_samples)
        if not gap.any():
            continue
        if interpolation == "cubic" and seen.sum() >= 4:
            from scipy.interpolate import CubicSpline

            series[gap] = CubicSpline(times[seen], series[seen])(times[gap])
        else:
            series[gap] = np.interp(times[gap], times[seen], series[seen])
        filled[gap, column] = True
    return flat.reshape(data.shape), filled.reshape(data.shape)


def _fillable(seen: BoolArray, max_samples: int) -> BoolArray:
    """The missing samples that lie in inner gaps of at most ``max_samples`` samples."""
    fillable = np.zeros_like(seen)
    observed = np.flatnonzero(seen)
    for before, after in itertools.pairwise(observed.tolist()):
        missing = after - before - 1
        if 0 < missing <= max_samples:
            fillable[before + 1 : after] = True
    return fillable


def min_filter_length(order: int) -> int:
    """The fewest samples ``sosfiltfilt`` can filter with a Butterworth of ``order`` (run as
    ``order // 2`` forwards and backwards): one more than its default edge padding."""
    from scipy.signal import butter

    sos = butter(order // 2, 0.5, btype="low", output="sos")
    first_order = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * len(sos) + 1 - first_order) + 1


def butterworth(
    values: npt.ArrayLike, t: npt.ArrayLike, order: int = 4, cutoff_hz: float = 6.0
) -> tuple[FloatArray, FilterReport]:
    """``values`` (samples, ...) low-passed column by column with a zero-lag Butterworth filter,
    each stretch without NaN on its own; and what was not filtered, and why."""
    from scipy.signal import butter, sosfiltfilt

    data = np.array(values, dtype=np.float64)
    rate = sample_rate(t)
    nyquist = rate / 2.0
    finite = int(np.isfinite(data).sum())
    if rate <= 0 or cutoff_hz >= nyquist:
        reason = (
            "fewer than two samples"
            if rate <= 0
            else f"the {cutoff_hz:g} Hz cut-off is not below the Nyquist frequency of "
            f"{rate:.4g} samples/s ({nyquist:.4g} Hz)"
        )
        return data, FilterReport(0, finite, [f"not filtered: {reason}"])
    sos = butter(order // 2, cutoff_hz / nyquist, btype="low", output="sos")
    shortest = min_filter_length(order)
    flat = data.reshape(len(data), -1)
    report = FilterReport()
    for column in range(flat.shape[1]):
        series = flat[:, column]
        for start, stop in _finite_runs(series):
            if stop - start < shortest:
                report.unfiltered_values += stop - start
                continue
            series[start:stop] = sosfiltfilt(sos, series[start:stop])
            report.filtered_values += stop - start
    if report.unfiltered_values:
        share = report.unfiltered_values / max(1, finite)
        report.notes.append(
            f"{report.unfiltered_values} values ({share:.1%}) left unfiltered: they lie in stretches "
            f"of fewer than {shortest} samples between gaps, too short for an order-{order} Butterworth"
        )
    return flat.reshape(data.shape), report


def _finite_runs(series: FloatArray) -> list[tuple[int, int]]:
    """(start, stop) of each run of finite samples."""
    finite = np.concatenate([[False], np.isfinite(series), [False]])
    edges = np.flatnonzero(np.diff(finite.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
