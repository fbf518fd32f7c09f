"""CSV downloads of the read API's numbers: the same queries, scoping and figures, one row per day or key."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from agentdash.metrics import (
    DIMENSIONS,
    AgentPr,
    BreakdownRow,
    DayMetrics,
    MetricSet,
    MetricsQuery,
    agent_prs,
    breakdown,
    org_metrics,
)
from agentdash.web.dependencies import MAX_ROWS, RowLimit

CSV_MEDIA_TYPE = "text/csv"  # Litestar appends "; charset=utf-8" to text types
SCALARS = [f.name for f in msgspec.structs.fields(MetricSet) if f.name != "failures_by_category"]
PR_COLUMNS = [f.name for f in msgspec.structs.fields(AgentPr)]
FAILURE_PREFIX = "failures_by_category."


def metrics_csv(series: list[DayMetrics]) -> str:
    """One row per day: the date, every scalar metric, then one column per failure category."""
    return _table("date", [(day.date.isoformat(), day) for day in series])


def breakdown_csv(rows: list[BreakdownRow]) -> str:
    """One row per key (team, user, model, repo or agent; empty for none): every scalar metric and failure category."""
    return _table("key", [(row.key, row) for row in rows])


def prs_csv(prs: list[AgentPr]) -> str:
    """One row per agent PR, the fields of /prs; times in RFC 3339 (UTC), an empty cell for none."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(PR_COLUMNS)
    for pr in prs:
        cells = msgspec.to_builtins(pr)  # datetimes as RFC 3339 text, as in the JSON
        writer.writerow([spreadsheet_safe(v) if isinstance(v, str) else v for v in (cells[c] for c in PR_COLUMNS)])
    return out.getvalue()


# Cells a spreadsheet would run as a formula (OWASP, "CSV injection"): keys come from producers, not from us.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str | None) -> str | None:
    """The text, with a leading apostrophe when a spreadsheet would otherwise read it as a formula."""
    return f"'{text}" if text and text.startswith(FORMULA_STARTS) else text


def _table(first: str, rows: list[tuple[str | None, MetricSet]]) -> str:
    categories = _categories(m for _, m in rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([first, *SCALARS, *(FAILURE_PREFIX + c for c in categories)])
    for label, m in rows:
        failed = {f.category: f.runs for f in m.failures_by_category}
        # csv writes None as an empty cell and floats as repr: full precision, as in the JSON.
        cells = [
            spreadsheet_safe(label),
            *(getattr(m, name) for name in SCALARS),
            *(failed.get(c, 0) for c in categories),
        ]
        writer.writerow(cells)
    return out.getvalue()


def _categories(metric_sets: Iterable[MetricSet]) -> list[str]:
    """Every failure category present, most failed runs first (as the API orders them)."""
    totals: dict[str, int] = {}
    for m in metric_sets:
        for f in m.failures_by_category:
            totals[f.category] = totals.get(f.category, 0) + f.runs
    return sorted(totals, key=lambda c: (-totals[c], c))


def filename(query: MetricsQuery, what: str) -> str:
    org = re.sub(r"[^A-Za-z0-9._-]", "_", query.org_id)  # the header must stay one quoted token
    return f"agentdash-{org}-{what}-{query.date_from}-{query.date_to}.csv"


def _csv_response(body: str, name: str) -> Response:
    return Response(body, media_type=CSV_MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/api/v1/orgs/{org_id:str}/metrics.csv", sync_to_thread=True, summary="The daily series of /metrics as CSV")
def get_metrics_csv(state: State, metrics_query: NamedDependency[MetricsQuery]) -> Response:
    return _csv_response(
        metrics_csv(org_metrics(state.storage, metrics_query).series), filename(metrics_query, "metrics")
    )


def _breakdown_csv_route(dimension: str):
    # A path parameter must fill a whole segment, so each dimension gets its own literal path, which wins
    # over /breakdown/{dimension}. (One handler on several paths trips Litestar's sync_to_thread wrapping.)
    @get(f"/api/v1/orgs/{{org_id:str}}/breakdown/{dimension}.csv", sync_to_thread=True, name=f"breakdown-{dimension}-csv",
         summary=f"/breakdown/{dimension} as CSV, one row per key")  # fmt: skip
    def get_breakdown_csv(
        state: State, metrics_query: NamedDependency[MetricsQuery], limit: RowLimit = None
    ) -> Response:
        rows = breakdown(state.storage, metrics_query, dimension, limit)
        return _csv_response(breakdown_csv(rows), filename(metrics_query, f"breakdown-{dimension}"))

    return get_breakdown_csv


@get("/api/v1/orgs/{org_id:str}/prs.csv", sync_to_thread=True,
     summary="/prs as CSV, one row per pull request (every one up to limit, default 10 000)")  # fmt: skip
def get_prs_csv(state: State, metrics_query: NamedDependency[MetricsQuery], limit: RowLimit = None) -> Response:
    # A download is for the whole range, not the first page the dashboard shows.
    table = agent_prs(state.storage, metrics_query, limit or MAX_ROWS)
    return _csv_response(prs_csv(table.prs), filename(metrics_query, "prs"))


CSV_ROUTES = [get_metrics_csv, get_prs_csv, *(_breakdown_csv_route(d) for d in DIMENSIONS)]
