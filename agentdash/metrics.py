"""The metrics of SPEC §3 and §7, assembled from the read models' named queries. The API and the UI both call this."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from agentdash.sources.attribution import BUILT_IN
from agentdash.storage import Storage

DIMENSIONS = {"team": "team_id", "user": "user_id", "model": "model", "repo": "repo", "agent": "agent"}
# Dimensions of runs only: sessions and activity have none, so their users are the runs' users.
RUN_GROUPS = ("model", "repo", "agent")
DURATION_EDGES_S = (30, 60, 120, 300, 600, 1200, 1800, 3600)  # as in the duration_histogram query
# Time-to-merge buckets: 1 h, 4 h, 8 h, 1 day, 3 days, 1 week, 2 weeks (the time_to_merge_histogram query's $edges).
TIME_TO_MERGE_EDGES_S = (3600.0, 4 * 3600.0, 8 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 14 * 86400.0)
PR_LIMIT = 200  # the PR table's default length; `total` says how many there are


# The days a query may ask for: wide enough for any real history, narrow enough that a range and its previous
# period never leave what `date` can hold (0001-01-01 minus 30 days is an OverflowError, not an answer).
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2999, 12, 31)


class InvalidQuery(ValueError):
    """A metrics query that cannot be answered as asked (a reversed or too long range, an unknown dimension)."""


@dataclass(frozen=True)
class MetricsQuery:
    """An org, a day range and the filters; `teams` limits everything to those teams (a manager's scope)."""

    org_id: str
    date_from: date
    date_to: date
    team_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    repo: str | None = None
    teams: tuple[str, ...] | None = None
    agent: str | None = None  # attributes.agent (OTLP service.name): runs, usage, code changes and PRs carry one
    # A PR whose head branch starts with one of these is agent-authored: the org's (sources/attribution.py), applied
    # when metrics are queried, so a new prefix needs no rebuild.
    branch_prefixes: tuple[str, ...] = BUILT_IN.branch_prefixes

    def params(self) -> dict[str, Any]:
        return {"org": self.org_id, "from": self.date_from, "to": self.date_to, "team": self.team_id,
                "user": self.user_id, "model": self.model, "repo": self.repo, "agent": self.agent,
                "teams": list(self.teams) if self.teams is not None else None,
                "prefixes": list(self.branch_prefixes)}  # fmt: skip

    def days(self) -> list[date]:
        return [self.date_from + timedelta(days=i) for i in range((self.date_to - self.date_from).days + 1)]


class FailureCount(msgspec.Struct):
    category: str
    runs: int


class MetricSet(msgspec.Struct, kw_only=True):
    """Every metric of SPEC §3 and §7 for one slice (a range, a day, a team...)."""

    active_users: int | None = None
    dau: int | None = None
    wau: int | None = None
    mau: int | None = None
    runs_per_user: float | None = None
    sessions_per_user: float | None = None
    runs: int = 0
    runs_finished: int = 0
    runs_succeeded: int = 0
    runs_failed: int = 0
    runs_cancelled: int = 0
    success_rate: float | None = None
    failures_by_category: list[FailureCount] = []
    run_duration_avg_s: float | None = None
    run_duration_p95_s: float | None = None
    queue_wait_avg_s: float | None = None
    queue_wait_p95_s: float | None = None
    active_agent_time_per_session_s: float | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_per_run_usd: float | None = None
    runs_handed_off: int = 0
    handoff_rate: float | None = None
    post_handoff_iteration_rate: float | None = None
    sessions: int | None = 0
    runs_per_session: float | None = None
    session_lifespan_avg_s: float | None = None
    agent_prs_opened: int = 0
    agent_prs_merged: int = 0
    agent_prs_closed_unmerged: int = 0
    agent_pr_merge_rate: float | None = None
    agent_pr_time_to_merge_p50_s: float | None = None
    cost_per_merged_pr_usd: float | None = None
    lines_added: int = 0  # SPEC §7, from the agents' counters (code.changed events)
    lines_removed: int = 0
    commits: int = 0


class DayMetrics(MetricSet, kw_only=True):
    date: date


class OrgMetrics(MetricSet, kw_only=True):
    org_id: str
    from_: date = msgspec.field(name="from")
    to: date
    team_id: str | None
    user_id: str | None
    model: str | None = None
    repo: str | None = None
    agent: str | None = None
    series: list[DayMetrics]


class BreakdownRow(MetricSet, kw_only=True):
    key: str | None


class DurationBucket(msgspec.Struct):
    """Runs whose duration d falls in low_s <= d < high_s (no upper bound when high_s is None)."""

    low_s: float | None  # None: everything below high_s, negative durations included
    high_s: float | None
    runs: int


class MergeTimeBucket(msgspec.Struct):
    """Agent PRs merged in range whose time to merge t falls in low_s <= t < high_s (no upper bound when None)."""

    low_s: float | None  # None: everything below high_s, negative times (clock skew) included
    high_s: float | None
    prs: int


class AgentPr(msgspec.Struct, kw_only=True):
    """One agent-authored PR and the runs of its branch that the query lets through (.ai/PR_OUTCOMES.md)."""

    repo: str
    pr_number: int
    title: str | None
    url: str | None
    state: str  # open, merged or closed (closed unmerged)
    opened_at: datetime | None
    merged_at: datetime | None
    closed_at: datetime | None  # its latest close, when closed unmerged
    time_to_merge_s: float | None
    user_id: str | None
    team_id: str | None
    runs: int
    cost_usd: float  # SPEC §3 cost of those runs: their run.finished amounts plus their usage events
    runs_failed: int
    runs_handed_off: int  # runs with at least one handoff


class AgentPrs(msgspec.Struct, kw_only=True):
    """The agent PRs with an opened, merged or closed-unmerged fact in range, newest first, at most `limit`."""

    org_id: str
    from_: date = msgspec.field(name="from")
    to: date
    total: int  # all such PRs; `prs` holds the first `limit`
    limit: int
    prs: list[AgentPr]


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def org_metrics(storage: Storage, query: MetricsQuery) -> OrgMetrics:
    """Totals for the range and one entry per day (each day is that day's own metrics)."""
    slices, rolling_rows = _slices(storage, query, "day", rolling=True)
    rolling = {row.day: row for row in rolling_rows}
    series = []
    for day in query.days():
        metrics = slices.get(day) or _assemble(None, [], None)
        roll = rolling.get(day)
        metrics.dau, metrics.wau, metrics.mau = (roll.dau, roll.wau, roll.mau) if roll else (0, 0, 0)
        metrics.active_users = metrics.dau
        _per_user(metrics)
        series.append(DayMetrics(date=day, **msgspec.structs.asdict(metrics)))
    total = slices.get(_TOTAL) or _assemble(None, [], None)
    last = series[-1]
    total.dau, total.wau, total.mau = last.dau, last.wau, last.mau
    _per_user(total)
    return OrgMetrics(
        org_id=query.org_id, from_=query.date_from, to=query.date_to, team_id=query.team_id,
        user_id=query.user_id, model=query.model, repo=query.repo, agent=query.agent, series=series,
        **msgspec.structs.asdict(total),
    )  # fmt: skip


def breakdown(storage: Storage, query: MetricsQuery, dimension: str, limit: int | None = None) -> list[BreakdownRow]:
    """Metrics per team, user, model, repo or agent, busiest (most runs) first."""
    group = DIMENSIONS[dimension]
    slices, _ = _slices(storage, query, group)
    rows = []
    for key, metrics in slices.items():
        if key is _TOTAL:
            continue
        if group in RUN_GROUPS:  # no activity or sessions per model: users are the runs' users
            metrics.sessions = None
        _per_user(metrics)
        rows.append(BreakdownRow(key=key, **msgspec.structs.asdict(metrics)))
    rows.sort(key=lambda r: (-r.runs, -(r.active_users or 0), r.key or ""))
    return rows[:limit] if limit else rows


def filter_values(storage: Storage, query: MetricsQuery, dimension: str) -> list[str]:
    """The teams or users active in range, or the models, repos or agents of its runs, that the query's filters
    allow."""
    group = DIMENSIONS[dimension]
    params = {**query.params(), "group": group}
    if group not in RUN_GROUPS:
        people: list[Any] = storage.query("activity_keys", params)
        return sorted(row.key for row in people)
    # A model a run called besides its own (usage events) is a model of the range too.
    requests = {"run_keys": dict(params), "usage_keys": dict(params), "code_keys": dict(params)}
    if group == "agent":  # a PR's agent mark names agents that send no runs (Copilot's coding agent)
        requests["pr_keys"] = dict(params)
    rows: dict[str, list[Any]] = _query_all(storage, requests)
    return sorted({row.key for name_rows in rows.values() for row in name_rows})


def duration_histogram(storage: Storage, query: MetricsQuery) -> list[DurationBucket]:
    """Runs in range with a duration, counted per bucket of DURATION_EDGES_S (every bucket, zeros too)."""
    rows: list[Any] = storage.query("duration_histogram", query.params())
    counts = {row.bucket: row.runs for row in rows}
    lows = (None, *DURATION_EDGES_S)
    highs = (*DURATION_EDGES_S, None)
    return [DurationBucket(low, high, counts.get(i, 0)) for i, (low, high) in enumerate(zip(lows, highs, strict=True))]


def agent_prs(storage: Storage, query: MetricsQuery, limit: int = PR_LIMIT) -> AgentPrs:
    """The PR table: agent PRs with a fact in range, newest (by opened at) first, with their runs' figures."""
    rows: list[Any] = storage.query("agent_prs", {**query.params(), "limit": limit})
    prs = [
        AgentPr(
            repo=row.repo, pr_number=int(row.pr_number), title=row.title, url=row.url, state=row.state,
            opened_at=_moment(row.opened_us), merged_at=_moment(row.merged_us), closed_at=_moment(row.closed_us),
            time_to_merge_s=(row.merged_us - row.opened_us) / 1e6
            if row.merged_us is not None and row.opened_us is not None else None,
            user_id=row.user_id, team_id=row.team_id, runs=int(row.runs), cost_usd=float(row.cost_usd),
            runs_failed=int(row.runs_failed), runs_handed_off=int(row.runs_handed_off),
        )
        for row in rows
    ]  # fmt: skip
    total = int(rows[0].total) if rows else 0
    return AgentPrs(org_id=query.org_id, from_=query.date_from, to=query.date_to, total=total, limit=limit, prs=prs)


def time_to_merge_histogram(storage: Storage, query: MetricsQuery) -> list[MergeTimeBucket]:
    """Agent PRs merged in range, counted per bucket of TIME_TO_MERGE_EDGES_S (every bucket, zeros too)."""
    rows: list[Any] = storage.query("time_to_merge_histogram", {**query.params(), "edges": list(TIME_TO_MERGE_EDGES_S)})
    counts = {int(row.bucket): int(row.prs) for row in rows}
    lows = (None, *TIME_TO_MERGE_EDGES_S)
    highs = (*TIME_TO_MERGE_EDGES_S, None)
    return [MergeTimeBucket(low, high, counts.get(i, 0)) for i, (low, high) in enumerate(zip(lows, highs, strict=True))]


def _moment(us: int | None) -> datetime | None:
    return None if us is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


_TOTAL = object()


# Small queries overlap the big one: DuckDB releases the GIL and a year's run scan rarely fills both cores.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="metrics-query")


def _query_all(storage: Storage, requests: dict[str, dict[str, Any]]) -> dict[str, list]:
    futures = {name: _POOL.submit(storage.query, name, params) for name, params in requests.items()}
    return {name: future.result() for name, future in futures.items()}


def _slices(
    storage: Storage, query: MetricsQuery, group: str, rolling: bool = False
) -> tuple[dict[Any, MetricSet], list]:
    """Run, failure, session and activity figures per group value (total under _TOTAL), and rolling users."""
    params = {**query.params(), "group": group}
    has_people = group not in RUN_GROUPS
    names = ["run_metrics", "failure_metrics", "usage_metrics", "pr_metrics", "code_metrics"]
    names += ["session_metrics", "active_users"] if has_people else []
    requests = {name: dict(params) for name in names}
    if rolling:
        requests["rolling_active_users"] = query.params()
    rows = _query_all(storage, requests)

    def keyed(name: str) -> dict[Any, Any]:
        return {(_TOTAL if r.is_total else r.grp): r for r in rows.get(name, [])}

    runs, sessions, users = keyed("run_metrics"), keyed("session_metrics"), keyed("active_users")
    usage, prs, code = keyed("usage_metrics"), keyed("pr_metrics"), keyed("code_metrics")
    failures: dict[Any, list[FailureCount]] = {}
    for r in rows["failure_metrics"]:
        failures.setdefault(_TOTAL if r.is_total else r.grp, []).append(FailureCount(r.category, r.runs))
    slices = {}
    for key in runs.keys() | sessions.keys() | users.keys() | usage.keys() | prs.keys() | code.keys():
        run_row = runs.get(key)
        metrics = _assemble(run_row, failures.get(key, []), sessions.get(key), usage.get(key), prs.get(key))
        if (code_row := code.get(key)) is not None:
            metrics.lines_added, metrics.lines_removed = int(code_row.lines_added), int(code_row.lines_removed)
            metrics.commits = int(code_row.commits)
        if has_people:
            metrics.active_users = users[key].active_users if key in users else 0
        else:
            metrics.active_users = run_row.run_users if run_row else 0
        slices[key] = metrics
    return slices, rows.get("rolling_active_users", [])


def _assemble(runs: Any, failures: list[FailureCount], sessions: Any, usage: Any = None, prs: Any = None) -> MetricSet:
    m = MetricSet()
    m.failures_by_category = sorted(failures, key=lambda f: (-f.runs, f.category))
    if sessions is not None:
        m.sessions = sessions.sessions
        m.session_lifespan_avg_s = sessions.session_lifespan_avg_s
    if usage is not None:  # usage events' amounts; the run.finished amounts are added below
        m.cost_usd = float(usage.cost_usd)
        m.input_tokens, m.output_tokens = int(usage.input_tokens), int(usage.output_tokens)
        m.cache_read_tokens, m.cache_write_tokens = int(usage.cache_read_tokens), int(usage.cache_write_tokens)
    if runs is not None:
        _add_runs(m, runs)
    if prs is not None:
        m.agent_prs_opened, m.agent_prs_merged = int(prs.agent_prs_opened), int(prs.agent_prs_merged)
        m.agent_prs_closed_unmerged = int(prs.agent_prs_closed_unmerged)
        m.agent_pr_merge_rate = ratio(m.agent_prs_merged, m.agent_prs_merged + m.agent_prs_closed_unmerged)
        m.agent_pr_time_to_merge_p50_s = prs.agent_pr_time_to_merge_p50_s
    m.cost_per_merged_pr_usd = ratio(m.cost_usd, m.agent_prs_merged)
    return m


def _add_runs(m: MetricSet, runs: Any) -> None:
    m.runs, m.runs_finished = runs.runs, runs.runs_finished
    m.runs_succeeded, m.runs_failed, m.runs_cancelled = runs.runs_succeeded, runs.runs_failed, runs.runs_cancelled
    m.success_rate = ratio(runs.runs_succeeded, runs.runs_succeeded + runs.runs_failed)
    m.run_duration_avg_s, m.run_duration_p95_s = runs.run_duration_avg_s, runs.run_duration_p95_s
    m.queue_wait_avg_s, m.queue_wait_p95_s = runs.queue_wait_avg_s, runs.queue_wait_p95_s
    m.active_agent_time_per_session_s = ratio(runs.duration_sum_s, runs.run_sessions)
    m.cost_usd += float(runs.cost_usd)
    m.input_tokens += int(runs.input_tokens)
    m.output_tokens += int(runs.output_tokens)
    m.cache_read_tokens += int(runs.cache_read_tokens)
    m.cache_write_tokens += int(runs.cache_write_tokens)
    m.cost_per_run_usd = ratio(m.cost_usd, runs.runs_finished)
    m.runs_handed_off = runs.runs_handed_off
    m.handoff_rate = ratio(runs.runs_handed_off, runs.runs_finished)
    m.post_handoff_iteration_rate = ratio(runs.runs_followed_up, runs.runs_handed_off)
    m.runs_per_session = ratio(runs.runs, runs.run_sessions)


def _per_user(m: MetricSet) -> None:
    m.runs_per_user = ratio(m.runs, m.active_users or 0)
    m.sessions_per_user = ratio(m.sessions, m.active_users or 0) if m.sessions is not None else None
