"""Alternating pairs: a baseline and its subject measured in turn, the median pair reported.

On a shared 2-core machine one measurement of a ratio can be far off (a neighbour's burst
lands in one half of it), so the benchmarks whose figure is a ratio of two end-to-end runs
measure ``baseline, subject, baseline, subject, ...`` and report the pair whose ratio is the
median, with every pair's figures in their own rows (so the spread is in the result file and
in ``report.py``'s table).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from _common import Result

__all__ = ["median_index", "pair_rows"]


def median_index(ratios: Sequence[float]) -> int:
    """The position of the median ratio (the lower of the middle two for an even count)."""
    order = sorted(range(len(ratios)), key=lambda i: ratios[i])
    return order[(len(order) - 1) // 2]


def pair_rows(
    res: Result,
    figure: str,
    unit: str,
    pairs: Sequence[tuple[float, float]],
    *,
    baseline_name: str,
    target: str | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    min_value: float | None = None,
) -> int:
    """Report ``(baseline, subject)`` pairs: the median pair's row, then one row per pair.

    The first row is named ``figure`` (stable across runs for the report) and holds the pair
    whose ratio is the median, so its ratio is the median ratio; ``at_least`` (or
    ``at_most``, for a cost) is the target ratio it is judged by, and ``min_value`` a least
    value of the subject the target also asks for. Returns that pair's position.
    """
    ratios = [subject / base for base, subject in pairs]
    m = median_index(ratios)
    base, subject = pairs[m]
    met = (
        ratios[m] >= at_least
        if at_least is not None
        else ratios[m] <= at_most
        if at_most is not None
        else None
    )
    if met is not None and min_value is not None:
        met = met and subject >= min_value
    res.row(
        figure,
        subject,
        unit,
        baseline=base,
        baseline_name=baseline_name,
        target=target,
        met=met,
    )
    if len(pairs) > 1:
        for i, (b, s) in enumerate(pairs, 1):
            res.row(
                f"{figure}, pair {i} of {len(pairs)}",
                s,
                unit,
                baseline=b,
                baseline_name=baseline_name,
            )
        res.figures.setdefault("pair_ratios", {})[figure] = {
            "ratios": ratios,
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        }
    return m
