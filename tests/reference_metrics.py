"""Reference metrics: a plain Python reading of SPEC §2–§4 and §7 (with .ai/PR_OUTCOMES.md), used by tests as the oracle.

Written apart from the production SQL, on purpose without cleverness: dicts, loops, sorted().
Entry point: `reference_metrics(events, org_id, date_from, date_to, team_id=None, user_id=None)`
returns the JSON shape of `GET /api/v1/orgs/{org}/metrics`.

Times are kept as integer microseconds since the Unix epoch (the precision the server stores);
durations are reported as float seconds. Float sums use `math.fsum`, so they do not depend on
the order events arrived in; compare floats with a tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOUR_HOURS_US = 4 * 3600 * 1_000_000
RUN_EVENT_TYPES = ("run.queued", "run.started", "run.finished", "handoff")  # and `usage` when it names a run
AMOUNTS = ("cost_usd", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
PR_EVENT_TYPES = ("pr.opened", "pr.merged", "pr.closed")
CODE_COUNTS = ("lines_added", "lines_removed", "commits")  # of code.changed events; absent = 0
AGENT_BRANCH_PREFIXES = ("codex/", "claude/", "copilot/")  # PR_OUTCOMES.md's defaults

# Metric keys in the order the read API lists them.
METRIC_KEYS = (
    "active_users",
    "dau",
    "wau",
    "mau",
    "runs_per_user",
    "sessions_per_user",
    "runs",
    "runs_finished",
    "runs_succeeded",
    "runs_failed",
    "runs_cancelled",
    "success_rate",
    "failures_by_category",
    "run_duration_avg_s",
    "run_duration_p95_s",
    "queue_wait_avg_s",
    "queue_wait_p95_s",
    "active_agent_time_per_session_s",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_per_run_usd",
    "runs_handed_off",
    "handoff_rate",
    "post_handoff_iteration_rate",
    "sessions",
    "runs_per_session",
    "session_lifespan_avg_s",
    "agent_prs_opened",
    "agent_prs_merged",
    "agent_prs_closed_unmerged",
    "agent_pr_merge_rate",
    "agent_pr_time_to_merge_p50_s",
    "cost_per_merged_pr_usd",
    "lines_added",
    "lines_removed",
    "commits",
)


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Ev:
    """One distinct event of the org, with its time normalised to UTC."""

    id: str
    type: str
    user_id: str | None  # None only on pr.* events
    session_id: str | None  # None on pr.* events
    run_id: str | None
    team_id: str | None
    at_us: int  # microseconds since the epoch, UTC
    day: date  # UTC calendar day
    raw: dict

    @property
    def order_key(self) -> tuple[int, str]:
        """Earlier events sort first; a tie on time goes to the smaller id."""
        return (self.at_us, self.id)


def parse_time(value: str | datetime) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware datetime in UTC.

    Parsed with msgspec, the same parser the ingest port uses, so fractions finer than a
    microsecond are rounded exactly as the server rounds them.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = msgspec.json.decode(msgspec.json.encode(value), type=datetime)
    if parsed.tzinfo is None:
        raise ValueError(f"occurred_at needs an offset: {value!r}")
    return parsed.astimezone(UTC)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def distinct_org_events(events: list[dict], org_id: str) -> list[Ev]:
    """The org's events, first copy of each id kept, later copies ignored entirely."""
    seen: set[str] = set()
    kept: list[Ev] = []
    for raw in events:
        if raw["org_id"] != org_id:
            continue
        if raw["id"] in seen:
            continue
        seen.add(raw["id"])
        moment = parse_time(raw["occurred_at"])
        kept.append(
            Ev(
                id=raw["id"],
                type=raw["type"],
                user_id=raw.get("user_id"),
                session_id=raw.get("session_id"),
                run_id=raw.get("run_id"),
                team_id=raw.get("team_id"),
                at_us=to_us(moment),
                day=moment.date(),
                raw=raw,
            )
        )
    kept.sort(key=lambda e: e.order_key)
    return kept


# ---------------------------------------------------------------- entities


@dataclass
class Run:
    run_id: str
    user_id: str
    team_id: str | None
    session_id: str
    day: date
    queued_us: int | None = None
    started_us: int | None = None
    finished: Ev | None = None
    first_handoff_us: int | None = None
    model: str | None = None  # from the run's earliest event that names one
    repo: str | None = None
    branch: str | None = None  # from the run's earliest event with attributes.branch
    agent: str | None = None  # from the run's earliest event with attributes.agent
    first: tuple[int, str] = (0, "")  # its earliest event's (time, id): the earliest run of a branch has the least
    usages: list[Ev] = field(default_factory=list)  # its `usage` events: their amounts add to run.finished's
    code: list[Ev] = field(default_factory=list)  # its code.changed events

    @property
    def duration_s(self) -> float | None:
        if self.finished is None or self.started_us is None:
            return None
        return (self.finished.at_us - self.started_us) / 1_000_000

    @property
    def queue_wait_s(self) -> float | None:
        if self.started_us is None or self.queued_us is None:
            return None
        return (self.started_us - self.queued_us) / 1_000_000

    @property
    def status(self) -> str | None:
        return None if self.finished is None else self.finished.raw["status"]


@dataclass
class Session:
    session_id: str
    user_id: str
    team_id: str | None
    day: date
    message_times_us: list[int] = field(default_factory=list)
    usages: list[Ev] = field(default_factory=list)  # `usage` events without a run_id: the session's own
    code: list[Ev] = field(default_factory=list)  # code.changed events without a run_id

    @property
    def lifespan_s(self) -> float | None:
        if not self.message_times_us:
            return None
        return (max(self.message_times_us) - min(self.message_times_us)) / 1_000_000


def build_runs(events: list[Ev]) -> dict[str, Run]:
    """Runs keyed by run_id. `events` must be sorted earliest first."""
    runs: dict[str, Run] = {}
    for e in events:
        if e.type not in RUN_EVENT_TYPES and not (e.type in ("usage", "code.changed") and e.run_id is not None):
            continue
        run = runs.get(e.run_id)
        if run is None:  # the earliest event of the run: its anchor
            run = Run(run_id=e.run_id, user_id=e.user_id, team_id=e.team_id, session_id=e.session_id, day=e.day)
            run.first = e.order_key
            runs[e.run_id] = run
        if e.type == "run.queued" and run.queued_us is None:
            run.queued_us = e.at_us
        elif e.type == "run.started" and run.started_us is None:
            run.started_us = e.at_us
        elif e.type == "run.finished":
            run.finished = e  # events come earliest first, so the last assignment is the latest
        elif e.type == "handoff" and run.first_handoff_us is None:
            run.first_handoff_us = e.at_us
        elif e.type == "usage":
            run.usages.append(e)
        elif e.type == "code.changed":
            run.code.append(e)
        attributes = e.raw.get("attributes") or {}
        if run.model is None and attributes.get("model") is not None:
            run.model = str(attributes["model"])
        if run.repo is None and attributes.get("repo") is not None:
            run.repo = str(attributes["repo"])
        if run.branch is None and attributes.get("branch") is not None:
            run.branch = str(attributes["branch"])
        if run.agent is None and attributes.get("agent") is not None:
            run.agent = str(attributes["agent"])
    return runs


def build_sessions(events: list[Ev]) -> dict[str, Session]:
    """Sessions keyed by session_id, from events of every type. `events` sorted earliest first."""
    sessions: dict[str, Session] = {}
    for e in events:
        if e.type in PR_EVENT_TYPES:  # a PR has no session
            continue
        session = sessions.get(e.session_id)
        if session is None:
            session = Session(session_id=e.session_id, user_id=e.user_id, team_id=e.team_id, day=e.day)
            sessions[e.session_id] = session
        if e.type == "message.sent":
            session.message_times_us.append(e.at_us)
        if e.type == "usage" and e.run_id is None:
            session.usages.append(e)
        if e.type == "code.changed" and e.run_id is None:
            session.code.append(e)
    return sessions


def followed_up(run: Run, events: list[Ev]) -> bool:
    """Did the run's user queue another run in the run's session within 4 h after its first handoff?"""
    for e in events:
        if e.type != "run.queued" or e.run_id == run.run_id:
            continue
        if e.user_id != run.user_id or e.session_id != run.session_id:
            continue
        gap = e.at_us - run.first_handoff_us
        if 0 < gap <= FOUR_HOURS_US:
            return True
    return False


# ---------------------------------------------------------------- small maths


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def mean(values: list[float]) -> float | None:
    return None if not values else math.fsum(values) / len(values)


def quantile(values: list[float], q: float) -> float | None:
    """The q quantile, linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def p95(values: list[float]) -> float | None:
    """0.95 quantile, linear interpolation between closest ranks (numpy's default method)."""
    return quantile(values, 0.95)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class PullRequest:
    """One PR, (repo compared case-insensitively, pr_number), read from PR_OUTCOMES.md "A PR's state"."""

    repo: str  # as its earliest event names it
    head_branch: str
    opened_us: int | None = None  # earliest pr.opened
    merged_us: int | None = None  # earliest pr.merged
    latest: Ev | None = None  # its latest event: a pr.closed here and no merge means closed unmerged
    marked: bool = False  # some event carried attributes.agent_mark
    mark: str | None = None  # the earliest event's agent_mark
    user_id: str | None = None  # from the earliest event naming a user or team
    team_id: str | None = None
    named: bool = False
    run: Run | None = None  # the earliest run of the same org, repo and branch
    pr_number: int = 0
    first_us: int = 0  # its earliest event's time
    title: str | None = None  # of its latest event that names one (likewise url)
    url: str | None = None
    runs: list[Run] = field(default_factory=list)  # every run of the same org, repo (any case) and branch

    @property
    def closed_unmerged_us(self) -> int | None:
        if self.merged_us is None and self.latest is not None and self.latest.type == "pr.closed":
            return self.latest.at_us
        return None

    @property
    def agent_authored(self) -> bool:
        return self.marked or self.run is not None or self.head_branch.startswith(AGENT_BRANCH_PREFIXES)

    # Who and where it counts for filters and scopes: its run's, else its events' (repo: its own).
    @property
    def who(self) -> tuple[str | None, str | None]:
        return (self.run.team_id, self.run.user_id) if self.run is not None else (self.team_id, self.user_id)

    @property
    def model(self) -> str | None:
        return self.run.model if self.run is not None else None

    @property
    def agent(self) -> str | None:
        """Its run's agent, else its earliest agent mark."""
        if self.run is not None and self.run.agent is not None:
            return self.run.agent
        return self.mark

    @property
    def shown_repo(self) -> str:
        return self.run.repo if self.run is not None and self.run.repo is not None else self.repo


def build_prs(events: list[Ev], runs: dict[str, Run]) -> list[PullRequest]:
    """The org's PRs. `events` sorted earliest first."""
    prs: dict[tuple[str, int], PullRequest] = {}
    for e in events:
        if e.type not in PR_EVENT_TYPES:
            continue
        key = (e.raw["repo"].lower(), e.raw["pr_number"])
        pr = prs.get(key)
        if pr is None:
            pr = prs[key] = PullRequest(repo=e.raw["repo"], head_branch=e.raw["head_branch"],
                                        pr_number=e.raw["pr_number"], first_us=e.at_us)  # fmt: skip
        if e.type == "pr.opened" and pr.opened_us is None:
            pr.opened_us = e.at_us
        if e.type == "pr.merged" and pr.merged_us is None:
            pr.merged_us = e.at_us
        pr.latest = e
        if (e.raw.get("attributes") or {}).get("agent_mark") is not None:
            if not pr.marked:  # events come earliest first
                pr.mark = str(e.raw["attributes"]["agent_mark"])
            pr.marked = True
        for name in ("title", "url"):  # events come earliest first: the last one naming it wins
            if (e.raw.get("attributes") or {}).get(name) is not None:
                setattr(pr, name, e.raw["attributes"][name])
        if not pr.named and (e.user_id is not None or e.team_id is not None):
            pr.user_id, pr.team_id, pr.named = e.user_id, e.team_id, True
    for pr in prs.values():
        on_branch = [
            r for r in runs.values()
            if r.repo is not None and r.repo.lower() == pr.repo.lower() and r.branch == pr.head_branch
        ]  # fmt: skip
        pr.run = min(on_branch, key=lambda r: r.first) if on_branch else None
        pr.runs = on_branch
    return list(prs.values())


def day_of(us: int) -> date:
    return (EPOCH + timedelta(microseconds=us)).date()


# ---------------------------------------------------------------- metrics


@dataclass
class OrgData:
    events: list[Ev]
    runs: dict[str, Run]
    sessions: dict[str, Session]
    prs: list[PullRequest] = field(default_factory=list)


def load(events: list[dict], org_id: str) -> OrgData:
    distinct = distinct_org_events(events, org_id)
    runs = build_runs(distinct)
    return OrgData(events=distinct, runs=runs, sessions=build_sessions(distinct), prs=build_prs(distinct, runs))


@dataclass(frozen=True)
class Filters:
    """The read API's filters; `teams` is a manager's scope (None = every team)."""

    team_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    repo: str | None = None
    teams: tuple[str, ...] | None = None
    agent: str | None = None

    @property
    def filters_runs(self) -> bool:
        return self.model is not None or self.repo is not None or self.agent is not None


def matches(team: str | None, user: str | None, f: Filters) -> bool:
    """Does an event/run/session with this team and user pass the filters?"""
    if f.team_id is not None and team != f.team_id:
        return False
    if f.teams is not None and team not in f.teams:
        return False
    if f.user_id is not None and user != f.user_id:
        return False
    return True


def run_matches(r: Run, f: Filters) -> bool:
    if f.model is not None and r.model != f.model:
        return False
    if f.repo is not None and r.repo != f.repo:
        return False
    if f.agent is not None and r.agent != f.agent:
        return False
    return matches(r.team_id, r.user_id, f)


def own_model(e: Ev) -> str | None:
    model = (e.raw.get("attributes") or {}).get("model")
    return None if model is None else str(model)


def own_agent(e: Ev) -> str | None:
    agent = (e.raw.get("attributes") or {}).get("agent")
    return None if agent is None else str(agent)


def agent_passes(e: Ev, run: Run | None, f: Filters) -> bool:
    """An event counted apart from its run (a usage, a code change): its own agent, else its run's."""
    agent = own_agent(e) if own_agent(e) is not None or run is None else run.agent
    return f.agent is None or agent == f.agent


def consumption(data: OrgData, first: date, last: date, f: Filters) -> dict:
    """SPEC §3 cost and tokens: what runs in range consumed (their run.finished amounts and their usage events), plus
    the usage without a run of sessions in range.

    Every amount is counted under a model: a run.finished's is the run's model, a usage's its own (else its run's).
    A model filter keeps the amounts of that model; a repo filter those of runs of that repo (a session has none).
    The agent is counted like the model: a run.finished's is the run's, a usage's its own, else its run's.
    """
    wanted: list[dict] = []
    for r in data.runs.values():
        if not (first <= r.day <= last and matches(r.team_id, r.user_id, f)):
            continue
        if f.repo is not None and r.repo != f.repo:
            continue
        if r.finished is not None and (f.model is None or r.model == f.model) and (f.agent in (None, r.agent)):
            wanted.append(r.finished.raw)
        for u in r.usages:
            model = own_model(u) if own_model(u) is not None else r.model
            if (f.model is None or model == f.model) and agent_passes(u, r, f):
                wanted.append(u.raw)
    if f.repo is None:
        for s in data.sessions.values():
            if first <= s.day <= last and matches(s.team_id, s.user_id, f):
                wanted += [u.raw for u in s.usages
                           if (f.model is None or own_model(u) == f.model) and agent_passes(u, None, f)]  # fmt: skip
    totals: dict = {"cost_usd": math.fsum(float(raw.get("cost_usd") or 0) for raw in wanted)}
    for name in AMOUNTS[1:]:
        totals[name] = sum(int(raw.get(name) or 0) for raw in wanted)
    return totals


def code_change_counts(events: list[Ev]) -> dict[str, dict[str, int]]:
    """What each code.changed event counts (by id): its counts; with a series, each count's increase over the series'
    previous event, the events ordered by their sum of counts (then time, id), never below 0."""
    counted: dict[str, dict[str, int]] = {}
    series: dict[str, list[Ev]] = {}
    for e in events:
        if e.type != "code.changed":
            continue
        if e.raw.get("series") is None:
            counted[e.id] = {name: int(e.raw.get(name) or 0) for name in CODE_COUNTS}
        else:
            series.setdefault(e.raw["series"], []).append(e)
    for members in series.values():
        members.sort(key=lambda e: (sum(int(e.raw.get(name) or 0) for name in CODE_COUNTS), e.at_us, e.id))
        previous = dict.fromkeys(CODE_COUNTS, 0)
        for e in members:
            now = {name: int(e.raw.get(name) or 0) for name in CODE_COUNTS}
            counted[e.id] = {name: max(now[name] - previous[name], 0) for name in CODE_COUNTS}
            previous = now
    return counted


def code_changes(data: OrgData, first: date, last: date, f: Filters) -> dict:
    """SPEC §7 lines_added, lines_removed, commits: a run's code.changed events count with the run (its day, team,
    user, repo; the event's model, else the run's), the others with their session (and their own model and repo)."""
    counted = code_change_counts(data.events)
    wanted: list[Ev] = []
    for r in data.runs.values():
        if first <= r.day <= last and matches(r.team_id, r.user_id, f) and (f.repo is None or r.repo == f.repo):
            wanted += [e for e in r.code
                       if (f.model is None or (r.model if own_model(e) is None else own_model(e)) == f.model)
                       and agent_passes(e, r, f)]  # fmt: skip
    for s in data.sessions.values():
        if first <= s.day <= last and matches(s.team_id, s.user_id, f):
            for e in s.code:
                repo = (e.raw.get("attributes") or {}).get("repo")
                if (f.model is None or own_model(e) == f.model) and (f.repo is None or repo == f.repo) \
                        and agent_passes(e, None, f):  # fmt: skip
                    wanted.append(e)
    return {name: sum(counted[e.id][name] for e in wanted) for name in CODE_COUNTS}


def active_users(data: OrgData, first: date, last: date, f: Filters) -> int:
    """Users active on a day in [first, last]; with runs filtered by model or repo, users of matching runs."""
    if f.filters_runs:
        return len({r.user_id for r in data.runs.values() if first <= r.day <= last and run_matches(r, f)})
    users = set()
    for e in data.events:
        if e.type in PR_EVENT_TYPES:  # a forge's event, not the person using agents
            continue
        if first <= e.day <= last and matches(e.team_id, e.user_id, f):
            users.add(e.user_id)
    return len(users)


def pr_outcomes(data: OrgData, first: date, last: date, f: Filters) -> dict:
    """SPEC §7 over agent-authored PRs whose team/user/model/repo pass the filters, each fact on its own day."""
    prs = agent_prs_of(data, f)

    def within(us: int | None) -> bool:
        return us is not None and first <= day_of(us) <= last

    opened = [pr for pr in prs if within(pr.opened_us)]
    merged = [pr for pr in prs if within(pr.merged_us)]
    closed = [pr for pr in prs if within(pr.closed_unmerged_us)]
    to_merge = [(pr.merged_us - pr.opened_us) / 1_000_000 for pr in merged if pr.opened_us is not None]
    return {
        "agent_prs_opened": len(opened),
        "agent_prs_merged": len(merged),
        "agent_prs_closed_unmerged": len(closed),
        "agent_pr_merge_rate": ratio(len(merged), len(merged) + len(closed)),
        "agent_pr_time_to_merge_p50_s": quantile(to_merge, 0.5),
    }


def metrics_for_range(data: OrgData, date_from: date, date_to: date, f: Filters) -> dict:
    """Every metric of SPEC §3 for days [date_from, date_to]."""
    active = active_users(data, date_from, date_to, f)
    dau = active_users(data, date_to, date_to, f)
    wau = active_users(data, date_to - timedelta(days=6), date_to, f)
    mau = active_users(data, date_to - timedelta(days=29), date_to, f)

    runs = [r for r in data.runs.values() if date_from <= r.day <= date_to and run_matches(r, f)]
    finished = [r for r in runs if r.finished is not None]
    succeeded = [r for r in finished if r.status == "succeeded"]
    failed = [r for r in finished if r.status == "failed"]
    cancelled = [r for r in finished if r.status == "cancelled"]

    failure_counts: dict[str, int] = {}
    for r in failed:
        category = r.finished.raw.get("failure_category")
        failure_counts[category] = failure_counts.get(category, 0) + 1
    failures_by_category = [
        {"category": c, "runs": n}
        for c, n in sorted(failure_counts.items(), key=lambda item: (-item[1], item[0]))
        if n > 0
    ]

    durations = [r.duration_s for r in runs if r.duration_s is not None]
    waits = [r.queue_wait_s for r in runs if r.queue_wait_s is not None]
    run_sessions = {r.session_id for r in runs}

    consumed = consumption(data, date_from, date_to, f)
    cost = consumed["cost_usd"]

    handed_off = [r for r in finished if r.first_handoff_us is not None]
    iterated = [r for r in handed_off if followed_up(r, data.events)]

    sessions = [s for s in data.sessions.values() if date_from <= s.day <= date_to and matches(s.team_id, s.user_id, f)]
    if f.filters_runs:  # the sessions that hold a matching run (of any day)
        holding = {r.session_id for r in data.runs.values() if run_matches(r, f)}
        sessions = [s for s in sessions if s.session_id in holding]
    lifespans = [s.lifespan_s for s in sessions if s.lifespan_s is not None]
    outcomes = pr_outcomes(data, date_from, date_to, f)

    return {
        "active_users": active,
        "dau": dau,
        "wau": wau,
        "mau": mau,
        "runs_per_user": ratio(len(runs), active),
        "sessions_per_user": ratio(len(sessions), active),
        "runs": len(runs),
        "runs_finished": len(finished),
        "runs_succeeded": len(succeeded),
        "runs_failed": len(failed),
        "runs_cancelled": len(cancelled),
        "success_rate": ratio(len(succeeded), len(succeeded) + len(failed)),
        "failures_by_category": failures_by_category,
        "run_duration_avg_s": mean(durations),
        "run_duration_p95_s": p95(durations),
        "queue_wait_avg_s": mean(waits),
        "queue_wait_p95_s": p95(waits),
        "active_agent_time_per_session_s": ratio(math.fsum(durations), len(run_sessions)),
        "cost_usd": cost,
        "input_tokens": consumed["input_tokens"],
        "output_tokens": consumed["output_tokens"],
        "cache_read_tokens": consumed["cache_read_tokens"],
        "cache_write_tokens": consumed["cache_write_tokens"],
        "cost_per_run_usd": ratio(cost, len(finished)),
        "runs_handed_off": len(handed_off),
        "handoff_rate": ratio(len(handed_off), len(finished)),
        "post_handoff_iteration_rate": ratio(len(iterated), len(handed_off)),
        "sessions": len(sessions),
        "runs_per_session": ratio(len(runs), len(run_sessions)),
        "session_lifespan_avg_s": mean(lifespans),
        **outcomes,
        "cost_per_merged_pr_usd": ratio(cost, outcomes["agent_prs_merged"]),
        **code_changes(data, date_from, date_to, f),
    }


def reference_metrics(
    events: list[dict],
    org_id: str,
    date_from: date,
    date_to: date,
    team_id: str | None = None,
    user_id: str | None = None,
    *,
    model: str | None = None,
    repo: str | None = None,
    teams: tuple[str, ...] | None = None,
    agent: str | None = None,
) -> dict:
    """The read API's answer for an org over [date_from, date_to], computed from raw wire events."""
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    data = load(events, org_id)
    answer = {
        "org_id": org_id,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "team_id": team_id,
        "user_id": user_id,
        "model": model,
        "repo": repo,
        "agent": agent,
    }
    f = Filters(team_id, user_id, model, repo, teams, agent)
    answer.update(metrics_for_range(data, date_from, date_to, f))
    answer["series"] = [
        {"date": day.isoformat(), **metrics_for_range(data, day, day, f)} for day in days_between(date_from, date_to)
    ]
    return answer


# ---------------------------------------------------------------- the PR table and the time-to-merge histogram


def agent_prs_of(data: OrgData, f: Filters) -> list[PullRequest]:
    """Agent-authored PRs whose team, user, model and repo pass the filters (as pr_outcomes picks them)."""
    return [
        pr for pr in data.prs
        if pr.agent_authored and matches(*pr.who, f)
        and (f.model is None or pr.model == f.model) and (f.repo is None or pr.shown_repo == f.repo)
        and (f.agent is None or pr.agent == f.agent)
    ]  # fmt: skip


def pr_run_figures(pr: PullRequest, f: Filters) -> dict:
    """The PR's branch's runs that pass the filters: how many, their SPEC §3 cost, failed and handed-off runs.

    A run counts under its own model and its usage events under theirs (else the run's), as in consumption().
    """
    runs = [r for r in pr.runs if run_matches(r, f)]
    costs = [float(r.finished.raw.get("cost_usd") or 0) for r in runs if r.finished is not None]
    for r in pr.runs:
        if not matches(r.team_id, r.user_id, f) or (f.repo is not None and r.repo != f.repo):
            continue
        for u in r.usages:
            model = own_model(u) if own_model(u) is not None else r.model
            if (f.model is None or model == f.model) and agent_passes(u, r, f):
                costs.append(float(u.raw.get("cost_usd") or 0))
    return {
        "runs": len(runs),
        "cost_usd": math.fsum(costs),
        "runs_failed": sum(1 for r in runs if r.status == "failed"),
        "runs_handed_off": sum(1 for r in runs if r.first_handoff_us is not None),
    }


def rfc3339(us: int | None) -> str | None:
    if us is None:
        return None
    text = (EPOCH + timedelta(microseconds=us)).isoformat()
    return text.replace("+00:00", "Z")


def reference_agent_prs(
    events: list[dict],
    org_id: str,
    date_from: date,
    date_to: date,
    team_id: str | None = None,
    user_id: str | None = None,
    *,
    model: str | None = None,
    repo: str | None = None,
    teams: tuple[str, ...] | None = None,
    limit: int = 200,
    agent: str | None = None,
) -> dict:
    """`GET /api/v1/orgs/{org}/prs`: agent PRs with an opened, merged or closed-unmerged day in range, newest
    (opened, else first event) first, then repo (lower case) and number (largest first)."""
    f = Filters(team_id, user_id, model, repo, teams, agent)

    def within(us: int | None) -> bool:
        return us is not None and date_from <= day_of(us) <= date_to

    shown = [
        pr for pr in agent_prs_of(load(events, org_id), f)
        if within(pr.opened_us) or within(pr.merged_us) or within(pr.closed_unmerged_us)
    ]  # fmt: skip
    shown.sort(key=lambda pr: (-(pr.opened_us if pr.opened_us is not None else pr.first_us), pr.repo.lower(),
                               -pr.pr_number))  # fmt: skip
    rows = []
    for pr in shown[:limit]:
        state = "merged" if pr.merged_us is not None else "closed" if pr.closed_unmerged_us is not None else "open"
        team, user = pr.who
        to_merge = None
        if pr.merged_us is not None and pr.opened_us is not None:
            to_merge = (pr.merged_us - pr.opened_us) / 1_000_000
        rows.append({
            "repo": pr.shown_repo, "pr_number": pr.pr_number, "title": pr.title, "url": pr.url, "state": state,
            "opened_at": rfc3339(pr.opened_us), "merged_at": rfc3339(pr.merged_us),
            "closed_at": rfc3339(pr.closed_unmerged_us), "time_to_merge_s": to_merge,
            "user_id": user, "team_id": team, **pr_run_figures(pr, f),
        })  # fmt: skip
    return {"org_id": org_id, "from": date_from.isoformat(), "to": date_to.isoformat(), "total": len(shown),
            "limit": limit, "prs": rows}  # fmt: skip


def reference_time_to_merge_histogram(
    events: list[dict], org_id: str, date_from: date, date_to: date, edges: tuple[float, ...], **filters
) -> list[int]:
    """Agent PRs merged in range with an opened at, per bucket: i holds edges[i-1] <= t < edges[i]."""
    counts = [0] * (len(edges) + 1)
    for pr in agent_prs_of(load(events, org_id), Filters(**filters)):
        if pr.merged_us is None or pr.opened_us is None or not date_from <= day_of(pr.merged_us) <= date_to:
            continue
        seconds = (pr.merged_us - pr.opened_us) / 1_000_000
        counts[sum(1 for edge in edges if edge <= seconds)] += 1
    return counts
