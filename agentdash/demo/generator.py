"""A seeded, reproducible year of cloud-coding-agent usage for one org.

`generate_days` yields SPEC §1 wire events (plain dicts ready to JSON-encode) one day at a time;
`agentdash.demo.sender.send` posts them to the ingest port. One config always gives the same events, ids included, so
the demo, the tests and the benchmarks all tell one story: adoption growing over the year, a weekly
and daily rhythm, holidays, a bad model release week, a tool outage and a queue capacity crunch.

Events are shared read-only data: the `attributes` dicts are reused across events, so copy one
before changing it.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
_EPOCH_DATE = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class GeneratorConfig:
    """What history to generate; equal configs give identical events."""

    days: int = 365
    org_id: str = "demo"
    seed: int = 42
    end: dt.date | None = None  # last day generated (UTC); None = today UTC
    people: int = 150
    teams: int = 8
    scale: float = 1.0  # multiplies the amount of activity (tests use small values)


@dataclass(frozen=True)
class ModelProfile:
    """How one model behaves: speed, token appetite, price and its usual model_error rate."""

    name: str
    median_duration_s: float
    input_tokens_per_s: float
    output_ratio: float
    usd_per_input_token: float
    usd_per_output_token: float
    model_error_rate: float


MODELS = (
    ModelProfile("claude-sonnet", 230, 450, 0.10, 3e-6, 15e-6, 0.020),
    ModelProfile("claude-opus", 400, 350, 0.10, 15e-6, 75e-6, 0.015),
    ModelProfile("gpt-large", 290, 420, 0.08, 2.5e-6, 10e-6, 0.025),
    ModelProfile("fast-small", 45, 900, 0.06, 0.25e-6, 1.25e-6, 0.035),
)
# Prompt caching, as the big providers price it: a cached read costs a tenth of fresh input, a cache write a quarter more.
CACHE_READ_PRICE = 0.1
CACHE_WRITE_PRICE = 1.25
# A fifth of the runs come from a producer that reports each model call as a `usage` event (their run.finished then
# carries no totals, so nothing counts twice); a quarter of those hand small calls to a cheap helper model.
USAGE_RUN_SHARE = 0.2
HELPER_SHARE = 0.25
HELPER_MODEL = 3  # fast-small
CACHED_SHARE = 0.7  # usage runs whose calls share a cached prompt prefix
TITLE_SHARE = 0.1  # sessions whose title a small model writes: a usage without a run
PR_SHARE = 0.35  # sessions that work on a branch meant to become a pull request
MARKED_SHARE = 0.15  # of those, PRs made from another branch than the runs reported, known by Claude's body mark
# Runs whose agent reports its code counters (code.changed): more of the succeeded ones, which change more lines;
# runs on a PR's branch commit what they changed.
CODE_SHARE = {"succeeded": 0.35, "failed": 0.12, "cancelled": 0.08}
BRANCH_PREFIXES = ("agent/", "feat/", "fix/", "codex/")
BRANCH_PREFIX_CUM = (0.5, 0.8, 0.95, 1.0)
# The org drifts towards the big model over the year.
MODEL_MIX_START = (0.45, 0.08, 0.30, 0.17)
MODEL_MIX_END = (0.44, 0.20, 0.23, 0.13)
BAD_RELEASE_MODEL = "gpt-large"

TEAMS = (
    "platform",
    "payments",
    "mobile",
    "web",
    "data",
    "infra",
    "growth",
    "security",
    "search",
    "ml",
    "devex",
    "support",
)
TEAM_SIZE_WEIGHTS = (1.4, 1.1, 1.0, 1.3, 0.9, 0.8, 0.8, 0.6, 0.7, 0.7, 0.5, 0.5)
TEAM_HOUR_OFFSETS = (0.0, 0.0, 1.5, 0.0, -1.0, 0.5, 2.0, -1.5, 0.0, 1.0, -0.5, 0.0)
TEAM_REPOS = {
    "platform": ("acme/api-gateway", "acme/auth-service", "acme/notifications"),
    "payments": ("acme/payments-core", "acme/billing", "acme/auth-service"),
    "mobile": ("acme/ios-app", "acme/android-app", "acme/sdk-mobile"),
    "web": ("acme/web-frontend", "acme/design-system", "acme/api-gateway"),
    "data": ("acme/data-pipelines", "acme/warehouse-models", "acme/ml-platform"),
    "infra": ("acme/infra-terraform", "acme/k8s-manifests", "acme/ci-config"),
    "growth": ("acme/growth-experiments", "acme/web-frontend", "acme/notifications"),
    "security": ("acme/security-scanner", "acme/auth-service", "acme/infra-terraform"),
    "search": ("acme/search", "acme/api-gateway"),
    "ml": ("acme/ml-platform", "acme/data-pipelines"),
    "devex": ("acme/ci-config", "acme/cli"),
    "support": ("acme/docs", "acme/cli"),
}
SHARED_REPOS = ("acme/monorepo", "acme/docs", "acme/cli")
AGENTS = ("claude-code", "codex", "gemini-cli", "copilot")  # attributes.agent, as OTLP's service.name names them
AGENT_CUM = (0.72, 0.86, 0.96, 1.0)

# Session start by UTC hour for someone with no offset: 08-19 mostly, lunch dip, a little night.
HOUR_WEIGHTS = (
    0.04,
    0.03,
    0.03,
    0.03,
    0.04,
    0.06,
    0.12,
    0.3,
    0.8,
    1.0,
    1.0,
    1.0,
    0.6,
    0.95,
    1.0,
    1.0,
    0.9,
    0.7,
    0.45,
    0.25,
    0.15,
    0.1,
    0.07,
    0.05,
)
HOUR_LOAD = tuple(w / max(HOUR_WEIGHTS) for w in HOUR_WEIGHTS)

# Calibrated so the default config gives ~1.45 M events, usage and code counts included (the benchmarks want 1.1-1.6 M).
MEAN_SESSIONS_PER_WEEKDAY = 3.85
CANCEL_RATE = 0.03
TOOL_ERROR_RATE = 0.04
INFRA_ERROR_RATE = 0.012
OTHER_ERROR_RATE = 0.015
MAX_DURATION_S = 1800  # the platform kills a run at 30 min: a timeout
FAILURE_CATEGORIES = ("tool_error", "model_error", "infra_error", "other")
HANDOFF_RATE = {"succeeded": 0.30, "failed": 0.10, "cancelled": 0.02}
NON_UTC_OFFSETS_MIN = (60, 120, -300, 330, 540, -480)


@dataclass(frozen=True)
class Incidents:
    """The scripted bad days of a history (first and last day, inclusive), for demos and tests."""

    bad_model: str
    bad_model_days: tuple[dt.date, dt.date]
    tool_outage_days: tuple[dt.date, dt.date]
    capacity_crunch_days: tuple[dt.date, dt.date]


def window(config: GeneratorConfig) -> tuple[dt.date, dt.date]:
    """First and last day the config generates (UTC)."""
    end = config.end or dt.datetime.now(dt.UTC).date()
    return end - dt.timedelta(days=config.days - 1), end


def incidents(config: GeneratorConfig) -> Incidents:
    """Where the failure spikes and the queue crunch fall for this config."""
    first, last = window(config)

    def span(fraction: float, weekday: int, length: int) -> tuple[dt.date, dt.date]:
        day = first + dt.timedelta(days=round(fraction * (config.days - 1)))
        day += dt.timedelta(days=(weekday - day.weekday()) % 7)
        if day + dt.timedelta(days=length - 1) > last:
            day -= dt.timedelta(days=7)
        day = max(day, first)
        return day, day + dt.timedelta(days=length - 1)

    return Incidents(
        bad_model=BAD_RELEASE_MODEL,
        bad_model_days=span(0.6, 0, 7),
        tool_outage_days=span(0.35, 1, 2),
        capacity_crunch_days=span(0.8, 0, 5),
    )


def generate_days(config: GeneratorConfig) -> Iterator[list[dict]]:
    """One list of wire events per day, oldest day first, each sorted by time.

    A day's list holds the events of the sessions started that day, so a late follow-up run can
    fall on a later day. Events after the end of the last day, or after now, are left out (they
    have not happened yet), so with `end=None` the last day depends on the clock.
    """
    history = _History(config, now_ms=time.time_ns() // 1_000_000)
    for index in range(config.days):
        yield history.day(index)


def generate(config: GeneratorConfig) -> list[dict]:
    """All events of the history, oldest day first."""
    events: list[dict] = []
    with _gc_paused():
        for day in generate_days(config):
            events.extend(day)
    return events


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: it would rescan the growing list of event dicts (which hold no
    cycles) over and over, costing ~40 % of the time of `generate`."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- the simulation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Person:
    user_id: str
    team_id: str
    sessions_per_weekday: float  # fully ramped, before `scale`
    adopted_on: int  # day index; negative = before the window, >= days = never
    hour_offset_ms: int
    primary_model: int
    repos: tuple[str, ...]
    repo_cum: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class _DayPlan:
    start_ms: int
    activity: float  # share of a normal weekday's sessions
    load: float  # expected volume relative to an average weekday; drives queue waits
    queue_factor: float  # incidents that slow the queue
    model_cum: tuple[float, ...]
    outcome_cum: tuple[tuple[float, ...], ...]  # per model: cancel, tool, model, infra, other


@lru_cache(maxsize=1)
def _time_tables() -> tuple[list[str], list[str]]:
    """'HH:MM:SS' for every second of a day and '.mmm' for every millisecond."""
    clock = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
    return clock, [f".{ms:03d}" for ms in range(1000)]


class _Clock:
    """Formats epoch milliseconds as RFC 3339; date prefixes are cached per day for speed."""

    def __init__(self) -> None:
        self.seconds, self.millis = _time_tables()
        self.prefixes: dict[int, str] = {}

    def prefix(self, day: int) -> str:
        """'YYYY-MM-DDT' of an epoch day number."""
        prefix = self.prefixes[day] = (_EPOCH_DATE + dt.timedelta(days=day)).isoformat() + "T"
        return prefix

    def utc(self, t_ms: int) -> str:
        day, in_day = divmod(t_ms, DAY_MS)
        second, milli = divmod(in_day, 1000)
        prefix = self.prefixes.get(day) or self.prefix(day)
        return prefix + self.seconds[second] + self.millis[milli] + "Z"

    def with_offset(self, offset_min: int) -> Callable[[int], str]:
        """A formatter writing local time at `offset_min` with its offset (the same instant)."""
        if offset_min == 0:
            return lambda t_ms: self.utc(t_ms)[:-1] + "+00:00"
        sign = "+" if offset_min > 0 else "-"
        suffix = f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
        shift = offset_min * MINUTE_MS
        return lambda t_ms: self.utc(t_ms + shift)[:-1] + suffix


def _team_repos(team: int) -> tuple[str, ...]:
    """The repos a team works in; teams past the named ones borrow a named team's repos."""
    return TEAM_REPOS[TEAMS[team % len(TEAMS)]]


# uuid4 layout: the version digit is 4, the variant digit one of 8 9 a b.
_UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _cum(weights: Iterable[float]) -> tuple[float, ...]:
    """Cumulative weights normalised to end at 1, for bisect sampling."""
    running = list(accumulate(weights))
    return tuple(w / running[-1] for w in running)


class _History:
    """Everything precomputed for one config; `day(i)` builds the events of day i."""

    def __init__(self, config: GeneratorConfig, now_ms: int) -> None:
        if config.days < 1 or config.people < 1 or config.teams < 1 or config.scale < 0:
            raise ValueError(f"invalid generator config: {config}")
        # Pin the end day once, so the window and the incidents agree even across midnight.
        config = replace(config, end=window(config)[1])
        self.config = config
        self.org_id = config.org_id
        self.rng = random.Random(config.seed)
        first, last = window(config)
        self.first_day = first
        self.cutoff_ms = min(now_ms, ((last - _EPOCH_DATE).days + 1) * DAY_MS - 1)
        self.clock = _Clock()
        self.ramp_days = max(1.0, 21 * min(1.0, config.days / 365))
        self.people = self._make_people()
        # A table of standard normals indexed by random bits is much faster than rng.gauss.
        self.normals = [self.rng.gauss(0.0, 1.0) for _ in range(1 << 14)]
        self.hour_cum = _cum(HOUR_WEIGHTS)
        self.offset_stamps = [self.clock.with_offset(m) for m in NON_UTC_OFFSETS_MIN]
        self.plus_zero_stamp = self.clock.with_offset(0)
        self.attrs_cache: dict[tuple, dict] = {}
        self.pr_numbers: dict[str, int] = {}  # the last pull request number per repo
        self.model_attrs = [{"model": m.name} for m in MODELS]
        self.plans = self._make_plans()

    # --- setup

    def _make_people(self) -> list[_Person]:
        cfg, rng = self.config, self.rng
        team_count = cfg.teams
        names = [TEAMS[i] if i < len(TEAMS) else f"team-{i + 1:02d}" for i in range(team_count)]
        size_cum = _cum(TEAM_SIZE_WEIGHTS[i % len(TEAM_SIZE_WEIGHTS)] for i in range(team_count))
        width = max(4, len(str(cfg.people)))
        # Skewed: a few heavy users, many light ones; rescaled so the mean is the same for
        # every seed (volume should not hinge on who drew the heaviest user).
        draws = [min(math.exp(rng.gauss(0.0, 0.9)), 8.0) for _ in range(cfg.people)]
        rates = [MEAN_SESSIONS_PER_WEEKDAY * d * len(draws) / sum(draws) for d in draws]
        adoption = self._adoption_days(rates)
        people = []
        for i in range(cfg.people):
            team = min(bisect_right(size_cum, rng.random()), team_count - 1)
            team_id = names[team]
            own = _team_repos(team)
            repos = tuple(rng.sample(own, k=min(len(own), rng.randint(2, 3)))) + (rng.choice(SHARED_REPOS),)
            offset_h = rng.gauss(TEAM_HOUR_OFFSETS[team % len(TEAM_HOUR_OFFSETS)], 0.7)
            people.append(
                _Person(
                    user_id=f"u-{i + 1:0{width}d}",
                    team_id=team_id,
                    sessions_per_weekday=rates[i],
                    adopted_on=adoption[i],
                    hour_offset_ms=int(offset_h * HOUR_MS),
                    primary_model=bisect_right(_cum(MODEL_MIX_START), rng.random()),
                    repos=repos,
                    repo_cum=_cum([0.9 / (len(repos) - 1)] * (len(repos) - 1) + [0.1]),
                )
            )
        return people

    def _adoption_days(self, rates: list[float]) -> list[int]:
        """30 % use agents from the start, 60 % start evenly over the window, 10 % never."""
        rng, days = self.rng, self.config.days
        # Enthusiasts (heavier users) tend to adopt earlier.
        order = sorted(range(len(rates)), key=lambda i: -math.log(rates[i]) + rng.gauss(0, 1.2))
        early, later = round(0.3 * len(rates)), round(0.6 * len(rates))
        adoption = [days * 10] * len(rates)
        for rank, person in enumerate(order):
            if rank < early:
                adoption[person] = -1
            elif rank < early + later:
                adoption[person] = int((rank - early + rng.random()) / later * days)
        return adoption

    def _make_plans(self) -> list[_DayPlan]:
        cfg, days = self.config, self.config.days
        spikes = incidents(cfg)
        expected = [self._expected_sessions(i) for i in range(days)]
        weekday_volumes = [v for i, v in enumerate(expected) if self._activity(i) >= 0.8] or expected
        typical = (sum(weekday_volumes) / len(weekday_volumes)) or 1.0
        plans = []
        for i in range(days):
            date = self.first_day + dt.timedelta(days=i)
            progress = i / max(days - 1, 1)
            mix = [a + (b - a) * progress for a, b in zip(MODEL_MIX_START, MODEL_MIX_END, strict=True)]
            crunch = spikes.capacity_crunch_days[0] <= date <= spikes.capacity_crunch_days[1]
            outage = spikes.tool_outage_days[0] <= date <= spikes.tool_outage_days[1]
            bad_week = spikes.bad_model_days[0] <= date <= spikes.bad_model_days[1]
            plans.append(
                _DayPlan(
                    start_ms=(date - _EPOCH_DATE).days * DAY_MS,
                    activity=self._activity(i),
                    load=expected[i] / typical,
                    queue_factor=(4.0 if crunch else 1.0) * (3.0 if outage else 1.0),
                    model_cum=_cum(mix),
                    outcome_cum=tuple(_outcome_cum(m, outage, bad_week) for m in MODELS),
                )
            )
        return plans

    def _activity(self, index: int) -> float:
        return _activity_factor(self.first_day + dt.timedelta(days=index))

    def _expected_sessions(self, index: int) -> float:
        return sum(p.sessions_per_weekday * self._ramp(p, index) for p in self.people) * (
            self._activity(index) * self._maturity(index)
        )

    def _maturity(self, index: int) -> float:
        """Adopters use agents more as the year goes on."""
        return 0.75 + 0.5 * index / max(self.config.days - 1, 1)

    def _ramp(self, person: _Person, index: int) -> float:
        """New adopters start slowly and reach their habit over three weeks of a year."""
        since = index - person.adopted_on
        if since < 0:
            return 0.0
        # Short windows compress the whole adoption story, ramp included, so volume stays
        # proportional to days x scale.
        ramp_days = self.ramp_days
        return 1.0 if since >= ramp_days else 0.35 + 0.65 * since / ramp_days

    # --- per day

    def day(self, index: int) -> list[dict]:
        """The events of the sessions started on day `index`, sorted by time."""
        plan = self.plans[index]
        out: list[tuple[int, dict, Callable[[int], str] | None]] = []
        day_factor = plan.activity * self._maturity(index) * self.config.scale
        poisson = self._poisson
        for person in self.people:
            expected = person.sessions_per_weekday * self._ramp(person, index) * day_factor
            if expected > 0:
                for _ in range(poisson(expected)):
                    self._session(person, plan, out)
        out.sort(key=itemgetter(0))
        self._stamp_and_number(out)
        cutoff = self.cutoff_ms
        return [event for t_ms, event, _ in out if t_ms <= cutoff]

    def _stamp_and_number(self, out: list[tuple[int, dict, Callable[[int], str] | None]]) -> None:
        """Fill in ids and timestamps in one tight loop (the hot path of the generator).

        Ids are uuid4-shaped but drawn from the seeded RNG, so reruns give the same ids.
        """
        digits = self.rng.randbytes(16 * len(out)).hex()
        variant = _UUID_VARIANT
        seconds, millis = self.clock.seconds, self.clock.millis
        prefixes, make_prefix = self.clock.prefixes, self.clock.prefix
        for i, (t_ms, event, stamp) in enumerate(out):
            h = digits[32 * i : 32 * i + 32]
            event["id"] = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:]}"
            if stamp is None:
                day, in_day = divmod(t_ms, DAY_MS)
                second, milli = divmod(in_day, 1000)
                prefix = prefixes.get(day) or make_prefix(day)
                event["occurred_at"] = prefix + seconds[second] + millis[milli] + "Z"
            else:
                event["occurred_at"] = stamp(t_ms)

    def _poisson(self, mean: float) -> int:
        if mean > 50:  # only with a large `scale`; Knuth's loop would underflow
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        # Knuth's method: fast for the small means of a normal day.
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _attributes(self, model: str | None, repo: str, agent: str) -> dict:
        key = (model, repo, agent)
        attrs = self.attrs_cache.get(key)
        if attrs is None:
            attrs = {"model": model, "repo": repo, "agent": agent} if model else {"repo": repo, "agent": agent}
            self.attrs_cache[key] = attrs
        return attrs

    def _stamp_style(self) -> Callable[[int], str] | None:
        """Most producers write UTC with Z; a few write +00:00 or a local offset."""
        u = self.rng.random()
        if u < 0.93:
            return None  # plain UTC with Z: formatted inline, see _stamp_and_number
        if u < 0.97:
            return self.plus_zero_stamp
        return self.offset_stamps[int((u - 0.97) / 0.03 * len(self.offset_stamps))]

    def _session(self, person: _Person, plan: _DayPlan, out: list) -> None:
        """One chat session: messages and a chain of runs, with handoffs and follow-ups."""
        rng = self.rng
        rnd = rng.random
        quarter = bisect_right(self.hour_cum, rnd()) * 4 + int(rnd() * 4)
        in_day = (quarter * 15 * MINUTE_MS + int(rnd() * 15 * MINUTE_MS) + person.hour_offset_ms) % DAY_MS
        t0 = plan.start_ms + in_day
        stamp = self._stamp_style()
        repo = person.repos[bisect_right(person.repo_cum, rnd())]
        agent = AGENTS[bisect_right(AGENT_CUM, rnd())]
        session = (person.user_id, person.team_id, f"ses-{rng.getrandbits(80):020x}", stamp)
        self._emit(out, session, t0, "session.started", self._attributes(None, repo, agent))
        branch = self._branch() if rnd() < PR_SHARE else None
        reported = branch if branch is not None and rnd() >= MARKED_SHARE else None  # what the runs carry
        # ~6 % of sessions are started by automation and carry no user message.
        with_messages = rnd() >= 0.06
        first_message = t0 + 1000 + int(rnd() * 20_000)
        if with_messages:
            self._emit(out, session, first_message, "message.sent")
            if rnd() < TITLE_SHARE:  # a small model names the session: a call of the session, of no run
                self._title(session, first_message + 800 + int(rnd() * 1500), out)
        queued_at = first_message + 2000 + int(rnd() * 25_000)
        last_t = queued_at
        statuses: list[str] = []
        for _ in range(10):
            finished = self._step(person, plan, session, repo, agent, queued_at, out, reported)
            if not finished:
                break
            statuses += [status for _, _, _, status in finished]
            last_t = max(t for _, _, t, _ in finished)
            next_at = self._handoff_and_next(session, finished, last_t, out)
            if next_at is None:
                break
            if with_messages and rnd() < 0.85:  # the prompt for the next run, after the last result
                said_at = max(next_at - 3000 - int(rnd() * 60_000), last_t + 500)
                self._emit(out, session, said_at, "message.sent")
            queued_at = next_at
        while with_messages and rnd() < 0.3:  # questions and remarks that started no run
            self._emit(out, session, first_message + int(rnd() * (last_t - first_message)) + 1, "message.sent")
        if branch is not None and statuses:
            self._pull_request(session, repo, branch, marked=reported is None, after=last_t,
                               succeeded="succeeded" in statuses, out=out)  # fmt: skip

    def _branch(self) -> str:
        bits = self.rng.getrandbits(32)
        return f"{BRANCH_PREFIXES[bisect_right(BRANCH_PREFIX_CUM, self.rng.random())]}change-{bits:08x}"

    def _pull_request(self, session: tuple, repo: str, branch: str, *, marked: bool, after: int, succeeded: bool,
                      out: list) -> None:  # fmt: skip
        """The session's pull request: opened after its last run; merged within hours or days, closed or left open
        (more merged when a run succeeded). Events after the end of the history are dropped with the rest."""
        rnd, normals, bits = self.rng.random, self.normals, self.rng.getrandbits
        number = self.pr_numbers[repo] = self.pr_numbers.get(repo, 0) + 1
        attributes = {"title": f"Change {number} in {repo.split('/')[-1]}"}
        if marked:
            attributes["agent_mark"] = "claude-code"  # "Generated with Claude Code" in its body
        opened = after + int((2 + 28 * rnd()) * MINUTE_MS)
        self._emit_pr(out, session, opened, "pr.opened", repo, number, branch, attributes)
        merged, closed = (0.78, 0.12) if succeeded else (0.35, 0.45)
        u = rnd()
        if u < merged:
            hours = 2 * math.exp(0.8 * normals[bits(14)]) if rnd() < 0.55 else 24 * (1 + 6 * rnd())
            self._emit_pr(out, session, opened + int(hours * HOUR_MS), "pr.merged", repo, number, branch, attributes)
        elif u < merged + closed:
            days = 1 + 9 * rnd()
            self._emit_pr(out, session, opened + int(days * DAY_MS), "pr.closed", repo, number, branch, attributes)

    def _emit_pr(self, out: list, session: tuple, t_ms: int, kind: str, repo: str, number: int, branch: str,
                 attributes: dict) -> None:  # fmt: skip
        user_id, team_id, _, stamp = session
        event = {"id": None, "type": kind, "org_id": self.org_id, "user_id": user_id, "team_id": team_id,
                 "repo": repo, "pr_number": number, "head_branch": branch, "author": user_id, "occurred_at": None,
                 "attributes": attributes}  # fmt: skip
        out.append((t_ms, event, stamp))

    def _step(
        self,
        person: _Person,
        plan: _DayPlan,
        session: tuple,
        repo: str,
        agent: str,
        queued_at: int,
        out: list,
        branch: str | None,
    ) -> list[tuple[str, dict, int, str]]:
        """One prompt's runs (sometimes 2-3 in parallel on different models); the finished ones."""
        rnd = self.rng.random
        u = rnd()
        parallel = 1 if u < 0.9 else (2 if u < 0.97 else 3)
        finished = []
        for i in range(parallel):
            model = person.primary_model if i == 0 and rnd() < 0.6 else bisect_right(plan.model_cum, rnd())
            result = self._run(plan, session, model, repo, agent, queued_at + i * int(rnd() * 3000), out, branch)
            if result is not None:
                finished.append(result)
        return finished

    def _run(
        self,
        plan: _DayPlan,
        session: tuple,
        model_index: int,
        repo: str,
        agent: str,
        queued_at: int,
        out: list,
        branch: str | None,
    ) -> tuple[str, dict, int, str] | None:
        """run.queued -> run.started -> run.finished; returns (run_id, attrs, finished_at, status)."""
        rng, normals = self.rng, self.normals
        rnd, bits = rng.random, rng.getrandbits
        model = MODELS[model_index]
        run_id = f"run-{bits(80):020x}"
        attrs = self._attributes(model.name, repo, agent)
        if branch is not None:  # the branch the run pushed to: what links it to its pull request
            attrs = {**attrs, "branch": branch}
        load = plan.load * HOUR_LOAD[(queued_at % DAY_MS) // HOUR_MS]
        median_wait_s = (3.0 + 30.0 * load * load) * plan.queue_factor
        wait_ms = min(max(int(median_wait_s * 1000 * math.exp(0.9 * normals[bits(14)])), 300), 45 * MINUTE_MS)
        started_at = queued_at + wait_ms
        quirk = rnd()
        if quirk >= 0.02:  # ~2 % of runs lose their run.queued on the way
            self._emit(out, session, queued_at, "run.queued", attrs, run_id)
        self._emit(out, session, started_at, "run.started", attrs, run_id)
        if 0.02 <= quirk < 0.023:  # never finishes (lost run)
            return None

        raw_s = 12 + model.median_duration_s * math.exp(0.85 * normals[bits(14)])
        outcome = bisect_right(plan.outcome_cum[model_index], rnd())
        category = None
        if outcome == 0:
            status, duration_s = "cancelled", max(20.0, raw_s * (0.1 + 0.6 * rnd()))
        elif outcome <= 4:
            status, category = "failed", FAILURE_CATEGORIES[outcome - 1]
            duration_s = max(20.0, raw_s * (0.15 + 0.75 * rnd()))
        elif raw_s > MAX_DURATION_S:
            status, category, duration_s = "failed", "timeout", MAX_DURATION_S + 5 * rnd()
        else:
            status, duration_s = "succeeded", max(20.0, raw_s)
        duration_s = min(duration_s, MAX_DURATION_S + 5)
        finished_at = started_at + int(duration_s * 1000)

        input_tokens = int(duration_s * model.input_tokens_per_s * math.exp(0.35 * normals[bits(14)]))
        output_tokens = int(input_tokens * model.output_ratio * (0.5 + rnd()))
        if rnd() < USAGE_RUN_SHARE:  # consumption call by call; the run.finished then says only how it ended
            self._calls(session, model_index, run_id, started_at, finished_at, input_tokens, output_tokens, out)
            result: dict = {"status": status}
        else:
            cost = round(input_tokens * model.usd_per_input_token + output_tokens * model.usd_per_output_token, 6)
            result = {"status": status, "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
        if category:
            result["failure_category"] = category
        self._emit(out, session, finished_at, "run.finished", attrs, run_id, result)
        if 0.023 <= quirk < 0.028:  # the producer re-sent run.finished under a new id
            self._emit(out, session, finished_at + 1000 + int(rnd() * 4000), "run.finished", attrs, run_id, result)
        if rnd() < CODE_SHARE[status]:
            self._code(session, attrs, run_id, started_at + int((finished_at - started_at) * (0.5 + 0.45 * rnd())),
                       status == "succeeded", branch is not None, out)  # fmt: skip
        return run_id, attrs, finished_at, status

    def _code(self, session: tuple, attrs: dict, run_id: str, at: int, succeeded: bool, on_branch: bool,
              out: list) -> None:  # fmt: skip
        """What the run changed (a long tail of lines; a failed run's work is smaller) and, on a PR's branch, the
        commits it made of it."""
        rnd, normals, bits = self.rng.random, self.normals, self.rng.getrandbits
        added = 1 + int((45 if succeeded else 15) * math.exp(1.1 * normals[bits(14)]))
        counts = {"lines_added": added, "lines_removed": int(added * (0.05 + 0.6 * rnd()))}
        if on_branch and succeeded:
            counts["commits"] = 1 + (rnd() < 0.3) + (rnd() < 0.1)
        elif rnd() < 0.1:
            counts["commits"] = 1
        self._emit(out, session, at, "code.changed", attrs, run_id, counts)

    def _calls(
        self,
        session: tuple,
        model_index: int,
        run_id: str,
        started_at: int,
        finished_at: int,
        input_tokens: int,
        output_tokens: int,
        out: list,
    ) -> None:
        """A run's model calls as `usage` events, spread over its run time: 2-4 calls on the run's model sharing a
        cached prompt prefix (written by the first call, read by the others), and now and then the helper model."""
        rnd = self.rng.random
        calls = 2 + int(rnd() * 3)
        prefix = int(input_tokens * (0.3 + 0.4 * rnd())) if rnd() < CACHED_SHARE else 0
        fresh, said = max(input_tokens - prefix, 0) // calls, output_tokens // calls
        helper = rnd() < HELPER_SHARE and model_index != HELPER_MODEL
        span = finished_at - started_at
        for i in range(calls):
            at = started_at + (i + 1) * span // (calls + 1)
            if helper and i == calls - 1:  # a summary of the work by the cheap model
                self._usage(session, HELPER_MODEL, at, run_id, fresh // 4 + 200, said // 3 + 20, 0, 0, out)
                continue
            cache_write, cache_read = (prefix, 0) if i == 0 else (0, prefix)
            self._usage(session, model_index, at, run_id, fresh, said, cache_read, cache_write, out)

    def _title(self, session: tuple, at: int, out: list) -> None:
        rnd = self.rng.random
        self._usage(session, HELPER_MODEL, at, None, 200 + int(rnd() * 600), 8 + int(rnd() * 16), 0, 0, out)

    def _usage(
        self,
        session: tuple,
        model_index: int,
        at: int,
        run_id: str | None,
        input_tokens: int,
        output_tokens: int,
        cache_read: int,
        cache_write: int,
        out: list,
    ) -> None:
        model = MODELS[model_index]
        price = model.usd_per_input_token
        cost = round(
            input_tokens * price + output_tokens * model.usd_per_output_token
            + cache_read * price * CACHE_READ_PRICE + cache_write * price * CACHE_WRITE_PRICE, 6,
        )  # fmt: skip
        amounts = {"input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
        if cache_read:
            amounts["cache_read_tokens"] = cache_read
        if cache_write:
            amounts["cache_write_tokens"] = cache_write
        self._emit(out, session, at, "usage", self.model_attrs[model_index], run_id, amounts)

    def _handoff_and_next(self, session: tuple, finished: list, step_end: int, out: list) -> int | None:
        """Maybe pull a run locally; return when the user queues the next run, or None."""
        rng = self.rng
        rnd = rng.random
        best = min(finished, key=lambda r: (r[3] != "succeeded", r[2]))
        run_id, attrs, finished_at, status = best
        if rnd() < HANDOFF_RATE[status]:
            handoff_at = finished_at + 20_000 + int(3 * MINUTE_MS * math.exp(0.9 * self.normals[rng.getrandbits(14)]))
            self._emit(out, session, handoff_at, "handoff", attrs, run_id)
            if rnd() < 0.05:  # pulled again later
                self._emit(out, session, handoff_at + int((10 + rnd() * 110) * MINUTE_MS), "handoff", attrs, run_id)
            u = rnd()
            if u < 0.5:  # iterate on the result within 4 h
                gap = 20 * MINUTE_MS * math.exp(1.1 * self.normals[rng.getrandbits(14)])
                return handoff_at + int(min(max(gap, MINUTE_MS), 3.9 * HOUR_MS))
            if u < 0.6:  # come back to it later (next morning)
                return handoff_at + int((4.25 + rnd() * 17.75) * HOUR_MS)
            return None
        carry_on = {"succeeded": 0.5, "failed": 0.6, "cancelled": 0.6}[status]
        if rnd() < carry_on:
            gap = 3 * MINUTE_MS * math.exp(0.9 * self.normals[rng.getrandbits(14)])
            return step_end + int(min(max(gap, 10_000), 2 * HOUR_MS))
        return None

    def _emit(
        self,
        out: list,
        session: tuple,
        t_ms: int,
        kind: str,
        attrs: dict | None = None,
        run_id: str | None = None,
        extra: dict | None = None,
    ) -> None:
        """Queue one event; its id and occurred_at are filled in once the day is sorted."""
        user_id, team_id, session_id, stamp = session
        event = {
            "id": None,
            "type": kind,
            "org_id": self.org_id,
            "user_id": user_id,
            "team_id": team_id,
            "session_id": session_id,
        }
        if run_id is not None:
            event["run_id"] = run_id
        event["occurred_at"] = None
        if extra:
            event.update(extra)
        if attrs is not None:
            event["attributes"] = attrs
        out.append((t_ms, event, stamp))


def _outcome_cum(model: ModelProfile, outage: bool, bad_week: bool) -> tuple[float, ...]:
    """Cumulative chances of cancelled, tool, model, infra, other failures for one model on one day."""
    tool = TOOL_ERROR_RATE + (0.22 if outage else 0.0)
    model_error = model.model_error_rate + (0.30 if bad_week and model.name == BAD_RELEASE_MODEL else 0.0)
    infra = INFRA_ERROR_RATE + (0.10 if outage else 0.0)
    return tuple(accumulate((CANCEL_RATE, tool, model_error, infra, OTHER_ERROR_RATE)))


def _activity_factor(day: dt.date) -> float:
    """Share of a normal weekday's activity on `day`: weekends, holidays, the summer lull."""
    if (day.month, day.day) >= (12, 24) or (day.month, day.day) == (1, 1):
        return 0.08  # Christmas to New Year
    if _is_public_holiday(day):
        return 0.12
    if day.weekday() >= 5:
        return 0.09
    factor = (1.05, 1.0, 1.0, 1.0, 0.85)[day.weekday()]
    if (day.month, day.day) >= (12, 18) or (day.month, day.day) <= (1, 3):
        factor *= 0.6  # people already away around the holidays
    if day.month == 8:
        factor *= 0.85
    return factor


def _is_public_holiday(day: dt.date) -> bool:
    month, weekday = day.month, day.weekday()
    if (month, day.day) in ((5, 1), (7, 4)):
        return True
    if month == 5 and weekday == 0 and day.day > 24:  # last Monday of May
        return True
    if month == 9 and weekday == 0 and day.day <= 7:  # first Monday of September
        return True
    return month == 11 and weekday == 3 and 22 <= day.day <= 28  # fourth Thursday of November
