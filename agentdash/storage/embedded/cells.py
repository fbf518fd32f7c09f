"""run_metrics_cells' rows as run_metrics' rows, a range's P95s interpolated from its two ranks as DuckDB does."""

from __future__ import annotations

import math
from collections import namedtuple
from fractions import Fraction
from typing import Any

# The columns run_metrics_cells adds to run_metrics': the two ranks' values and the rank, per P95.
RANK_COLUMNS = ("duration_lo", "duration_hi", "duration_rank", "queue_lo", "queue_hi", "queue_rank")


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
    row_type = namedtuple("run_metrics", [c for c in columns if c not in RANK_COLUMNS])  # type: ignore[misc]
    out = []
    for row in rows:
        fields: dict[str, Any] = dict(zip(columns, row, strict=True))
        duration = quantile_cont(fields.pop("duration_lo"), fields.pop("duration_hi"), fields.pop("duration_rank"))
        queue = quantile_cont(fields.pop("queue_lo"), fields.pop("queue_hi"), fields.pop("queue_rank"))
        if duration is not None:
            fields["run_duration_p95_s"] = duration / 1e6
        if queue is not None:
            fields["queue_wait_p95_s"] = queue / 1e6
        out.append(row_type(**fields))
    return out
