"""Summaries of samples: percentiles (nearest rank), ratios, and the way the report prints them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0–100) of `values` (not interpolated: a value that was measured)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Summary:
    """p50/p99/max (and the count) of a set of durations, in seconds."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        data = list(values)
        if not data:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            n=len(data),
            p50=percentile(data, 50),
            p90=percentile(data, 90),
            p99=percentile(data, 99),
            max=max(data),
            mean=sum(data) / len(data),
        )

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max, "mean": self.mean}


def ms(seconds: float) -> str:
    """A duration for a table: milliseconds, to a precision that suits its size; "–" when not measured."""
    if seconds is None or math.isnan(seconds):
        return "–"
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def ratio(a: float, b: float) -> float:
    """a / b, NaN when either is missing or b is zero."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def times(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}×"


def number(value: float, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"
