"""Summaries of repeated measurements: min / median / p99 (and max), and ratios measured in the same run.

A benchmark on a shared machine is noisy; a single figure means little. Every timing is kept as a list
of samples and reported through `Summary`, and comparisons are ratios of medians taken in one run.
"""

import math
import statistics
from dataclasses import dataclass


def percentile(samples, fraction):
    """The nearest-rank percentile (`fraction` in 0..1) of the samples: a value that was measured."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    count: int
    min: float
    median: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples):
        samples = [s for s in samples if s is not None]
        if not samples:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(samples), min(samples), statistics.median(samples), percentile(samples, 0.99), max(samples))

    def p(self, fraction, samples):
        return percentile(samples, fraction)


def ms(seconds):
    """Seconds as milliseconds, for a table cell."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    value = seconds * 1000
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def ratio(numerator, denominator):
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return numerator / denominator


def fmt_ratio(value):
    return "–" if math.isnan(value) else f"{value:.1f}×"


def triple_ms(summary):
    """'min / median / p99' in milliseconds."""
    return f"{ms(summary.min)} / {ms(summary.median)} / {ms(summary.p99)}"


def triple(values, fmt="{:.0f}"):
    """'min / median / p99' of plain numbers (throughputs, counts) over repeated runs."""
    s = Summary.of(values)
    if not s.count:
        return "–"
    return " / ".join(fmt.format(v) for v in (s.min, s.median, s.p99))
