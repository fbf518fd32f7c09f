"""run_metrics_cells' rows as run_metrics' rows, a range's P95s interpolated from its two ranks as DuckDB does."""

from __future__ import annotations

import math
from collections import namedtuple
from fractions import Fraction
from typing import Any

RunMetrics = namedtuple(
    "RunMetrics",
    "grp is_total runs runs_finished runs_succeeded runs_failed runs_cancelled run_duration_avg_s run_duration_p95_s "
    "queue_wait_avg_s queue_wait_p95_s duration_sum_s run_sessions cost_usd input_tokens output_tokens "
    "cache_read_tokens cache_write_tokens runs_handed_off runs_followed_up run_users",
)


def quantile_cont(lo: int | None, hi: int | None, rank: float | None) -> float | None:
    """quantile_cont from the values at ranks floor(rank) and ceil(rank) of the sorted values, and that rank.

    DuckDB computes lo * (1 - d) + hi * d with the first product and the sum rounded once (its build fuses them into
    a multiply-add); tests/test_cells.py holds this to quantile_cont itself.
    """
    if lo is None or hi is None or rank is None:
        return None
    d = rank - math.floor(rank)
    if d == 0:
        return float(lo)
    return float(Fraction(float(lo)) * Fraction(1.0 - d) + Fraction(float(hi) * d))


def run_metrics_rows(rows: list[tuple], columns: list[str]) -> list[Any]:
    out = []
    for row in rows:
        fields: dict[str, Any] = dict(zip(columns, row, strict=True))
        duration = quantile_cont(fields.pop("duration_lo"), fields.pop("duration_hi"), fields.pop("duration_rank"))
        queue = quantile_cont(fields.pop("queue_lo"), fields.pop("queue_hi"), fields.pop("queue_rank"))
        if duration is not None:
            fields["run_duration_p95_s"] = duration / 1e6
        if queue is not None:
            fields["queue_wait_p95_s"] = queue / 1e6
        out.append(RunMetrics(**fields))
    return out
