"""Small hand-made histories for the dashboard's browser and page tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def run_events(
    org: str, n: int, days_ago: int, team: str, user: str, status: str, cost: float, seconds: int
) -> list[dict]:
    """Run n of `user` at noon UTC `days_ago` days back: a message, queued, started, finished after `seconds`."""
    at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    base = {"org_id": org, "user_id": user, "session_id": f"s{n}", "team_id": team}
    finished = {**base, "id": f"f{n}", "type": "run.finished", "run_id": f"r{n}", "status": status, "cost_usd": cost,
                "occurred_at": (at + timedelta(seconds=20 + seconds)).isoformat()}  # fmt: skip
    if status == "failed":
        finished["failure_category"] = "tool_error"
    return [
        {**base, "id": f"m{n}", "type": "message.sent", "occurred_at": at.isoformat()},
        {
            **base,
            "id": f"q{n}",
            "type": "run.queued",
            "run_id": f"r{n}",
            "occurred_at": (at + timedelta(seconds=5)).isoformat(),
        },
        {
            **base,
            "id": f"s{n}",
            "type": "run.started",
            "run_id": f"r{n}",
            "occurred_at": (at + timedelta(seconds=20)).isoformat(),
        },
        finished,
    ]
