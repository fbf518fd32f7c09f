"""Webhook notifications: a JSON POST with a Slack-compatible `text` and the alert's fields."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from agentdash.alerts.rules import condition, scope_label, shown_webhook
from agentdash.storage import AlertEvent, AlertRule, AlertStore

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
MAX_BACKOFF_S = 3600.0  # exponential back-off up to an hour between attempts


@dataclass(frozen=True)
class Delivery:
    """How one POST went: `ok` for a 2xx answer; `status` the HTTP status (None when no answer), `error` why not."""

    ok: bool
    status: int | None
    error: str


def post(url: str, payload: dict[str, Any], timeout_s: float = TIMEOUT_S, key: str = "") -> Delivery:
    """POST the payload as JSON; never raises for the receiver's failures (they are the Delivery's). `key` goes out
    as `Idempotency-Key`, the same on every attempt of one entry."""
    headers = {"Idempotency-Key": key} if key else {}
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s, follow_redirects=False, headers=headers)
    except httpx.HTTPError as exc:
        return Delivery(False, None, f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= response.status_code < 300
    return Delivery(ok, response.status_code, "" if ok else f"HTTP {response.status_code}: {response.text[:200]}")


def test_payload(rule: AlertRule) -> dict[str, Any]:
    """What `agentdash alerts test` and the page's test button send: the rule's fields, state "test"."""
    return {
        "text": f":test_tube: agentdash test notification for alert rule {rule.name!r} ({scope_label(rule)}: "
        f"{condition(rule)}). Nothing fired.",
        "state": "test",
        "rule": rule_fields(rule),
    }


def rule_fields(rule: AlertRule) -> dict[str, Any]:
    return {"id": rule.id, "org_id": rule.org_id, "name": rule.name, "kind": rule.kind, "threshold": rule.threshold,
            "period": rule.period, "min_runs": rule.min_runs, "team_id": rule.team_id, "user_id": rule.user_id}  # fmt: skip


def event_payload(event: AlertEvent) -> dict[str, Any]:
    """A change of state as its webhook gets it: Slack's `text`, and the fields for any other receiver."""
    return {
        "text": event.text,
        "state": event.state,
        "alert": {"id": event.id, "rule_id": event.rule_id, "org_id": event.org_id, "rule_name": event.rule_name,
                  "kind": event.kind, "team_id": event.team_id, "user_id": event.user_id, "value": event.value,
                  "threshold": event.threshold, "period": event.period_key, "at": event.at.isoformat()},
    }  # fmt: skip


def next_attempt_s(attempts: int, initial_s: float) -> float:
    """Seconds until the next attempt after `attempts` failed ones: initial, 2x, 4x, ... at most an hour."""
    return min(initial_s * 2 ** (attempts - 1), MAX_BACKOFF_S)


class Notifier:
    """Sends the history's pending notifications on a thread of its own, so ingest and the fold never wait for a
    webhook. A failed attempt is retried with exponential back-off until `retry_for_s` after the change; each
    attempt's outcome is written to the entry. Entries are leased while sent: a notifier killed mid-send leaves its
    entry due again after the lease (the receiver may then see it twice, with the same Idempotency-Key)."""

    def __init__(self, alerts: AlertStore, *, retry_initial_s: float = 10.0, retry_for_s: float = 86_400.0,
                 interval_s: float = 1.0, timeout_s: float = TIMEOUT_S, clock: Callable[[], float] = time.time,
                 send: Callable[..., Delivery] = post) -> None:  # fmt: skip
        self.alerts = alerts
        self.retry_initial_s = retry_initial_s
        self.retry_for_s = retry_for_s
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.send = send
        # Attempts since start by outcome, for /metrics; every key is there from the start, so that a scrape
        # copying it never meets a key being added by this thread.
        self.outcomes: Counter[str] = Counter({"delivered": 0, "retrying": 0, "failed": 0})
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alert-notifier", daemon=True)

    def deliver_due(self) -> int:
        """One pass: try every due entry once; returns how many were tried."""
        now_us = int(self.clock() * 1_000_000)
        due = self.alerts.claim_due(now_us, lease_us=int((self.timeout_s + 30) * 1_000_000))
        for event in due:
            delivery = self.send(event.webhook_url, event_payload(event), self.timeout_s, f"agentdash-alert-{event.id}")
            done_us = int(self.clock() * 1_000_000)
            if delivery.ok:
                self.alerts.mark_delivery(event.id, "delivered", done_us, delivery.status, "", done_us)
                self.outcomes["delivered"] += 1
                continue
            retry_us = done_us + int(next_attempt_s(event.attempts + 1, self.retry_initial_s) * 1_000_000)
            gave_up = retry_us > int(event.at.timestamp() * 1_000_000) + int(self.retry_for_s * 1_000_000)
            self.alerts.mark_delivery(event.id, "failed" if gave_up else "pending", retry_us, delivery.status,
                                      delivery.error, None)  # fmt: skip
            self.outcomes["failed" if gave_up else "retrying"] += 1
            log.warning("alert notification %d to %s failed (%s)%s", event.id, shown_webhook(event.webhook_url),
                        delivery.error, "; giving up" if gave_up else "; will retry")  # fmt: skip
        return len(due)

    def wake(self, *_: object) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=self.timeout_s + 5)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                while self.deliver_due() and not self._stopping.is_set():
                    pass
            except Exception:  # the database away, say: the entries stay pending, the next pass retries
                log.exception("alert notifier pass failed; will retry")
            self._wake.wait(self.interval_s)
            self._wake.clear()
