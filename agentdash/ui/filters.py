"""The dashboard's filters, kept in the URL so that a copied link reopens the same view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from agentdash.metrics import EARLIEST_DAY, LATEST_DAY, MetricsQuery

PRESETS = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days", 365: "Last 365 days"}
DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366  # the read API's limit: a wider custom range would be refused there too
MAX_ID_LENGTH = 200
FILTER_KEYS = ("team_id", "user_id", "model", "repo", "agent")  # URL names, and Filters' field names


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Filters:
    """A date range (a preset number of days ending today, or custom) plus optional team, user, model, repo and
    agent."""

    date_from: date
    date_to: date
    days: int | None = DEFAULT_DAYS  # None for a custom range
    team_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    repo: str | None = None
    weekly: bool = False  # charts by ISO week instead of by day
    agent: str | None = None

    @classmethod
    def preset(cls, days: int = DEFAULT_DAYS, today: date | None = None, **ids) -> Filters:
        to = today or utc_today()
        return cls(to - timedelta(days=days - 1), to, days, **ids)

    @classmethod
    def from_params(cls, params: Mapping[str, str], today: date | None = None) -> Filters:
        """Parse `?days=30` or `?from=..&to=..`, plus the FILTER_KEYS and `weekly=1`; bad values fall back."""
        ids: dict[str, Any] = {key: _identifier(params.get(key)) for key in FILTER_KEYS}  # field name -> value
        ids["weekly"] = params.get("weekly") == "1"
        if "from" in params or "to" in params:
            custom = _custom_range(params.get("from"), params.get("to"))
            if custom:
                return cls(*custom, days=None, **ids)
        days = _int(params.get("days"))
        return cls.preset(days if days in PRESETS else DEFAULT_DAYS, today, **ids)

    def to_query(self, **changes) -> str:
        """The URL query string of these filters (with `changes` applied), for links and navigation."""
        f = replace(self, **changes) if changes else self
        params: dict[str, str | int] = (
            {"days": f.days} if f.days else {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
        )
        params.update(f.picked())
        if f.weekly:
            params["weekly"] = 1
        return urlencode(params)

    def picked(self) -> dict[str, str]:
        """The filters other than the date range that are set, by their URL names."""
        return {key: value for key in FILTER_KEYS if (value := getattr(self, key))}

    def metrics_query(self, org_id: str) -> MetricsQuery:
        return MetricsQuery(
            org_id, self.date_from, self.date_to, self.team_id, self.user_id, self.model, self.repo, agent=self.agent
        )

    def previous_period(self) -> Filters:
        """The period of equal length that ends the day before this one starts, same other filters."""
        length = (self.date_to - self.date_from).days + 1
        return replace(self, date_from=self.date_from - timedelta(days=length),
                       date_to=self.date_from - timedelta(days=1), days=None)  # fmt: skip

    @property
    def label(self) -> str:
        if self.days:
            return f"{PRESETS[self.days]} ({self.date_from} – {self.date_to}, UTC)"
        return f"{self.date_from} – {self.date_to} (UTC)"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _identifier(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if value and len(value) <= MAX_ID_LENGTH and value.isprintable() else None


def _custom_range(start: str | None, end: str | None) -> tuple[date, date] | None:
    try:
        date_from, date_to = date.fromisoformat(start or ""), date.fromisoformat(end or "")
    except ValueError:
        return None
    if date_from > date_to or (date_to - date_from).days >= MAX_DAYS:
        return None
    if date_from < EARLIEST_DAY or date_to > LATEST_DAY:  # its previous period would not fit in a date
        return None
    return date_from, date_to
