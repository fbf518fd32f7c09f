"""`agentdash demo`: a seeded year of history sent through the ingest API, then the dashboard on it."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import threading
import time
from collections.abc import Iterable

import click

from agentdash.auth import issue_key, issue_token
from agentdash.config import Settings
from agentdash.demo.agents import agent_exports
from agentdash.demo.alerts import add_demo_rules
from agentdash.demo.generator import GeneratorConfig, generate_days, window
from agentdash.demo.sender import SendStats, send, send_otlp
from agentdash.server import Running, serve
from agentdash.storage import IngestKeyStore, open_alerts, open_ingest_keys
from agentdash.ui import create_dashboard

DEMO_ORG = "demo"


class EventCounter:
    """A one-line live counter on stderr, for work whose total is not known up front."""

    def __init__(self, label: str) -> None:
        self.label, self.count, self._started, self._shown = label, 0, time.perf_counter(), 0.0

    def update(self, n: int) -> None:
        self.count += n
        now = time.perf_counter()
        if now - self._shown >= 0.2:
            self._shown = now
            self._print("\r")

    def close(self) -> None:
        self._print("\r")
        sys.stderr.write("\n")

    def _print(self, prefix: str) -> None:
        rate = self.count / max(time.perf_counter() - self._started, 1e-9)
        sys.stderr.write(f"{prefix}{self.label}: {self.count:,} events ({rate:,.0f}/s)")
        sys.stderr.flush()


def send_with_progress(
    url: str, events: Iterable[dict], *, batch_size: int = 500, token: str | None = None
) -> SendStats:
    counter = EventCounter("sending events to ingest")
    try:
        return send(url, events, batch_size=batch_size, token=token, progress=counter.update)
    finally:
        counter.close()


def wait_for_projection(running: Running, stop: threading.Event) -> None:
    logged = running.storage.log_position().last_seq
    with click.progressbar(length=logged, label="projecting into read models", file=sys.stderr) as bar:
        done = 0
        while not stop.is_set():
            projected = running.projector.status().events_projected
            bar.update(projected - done)
            done = projected
            if projected >= logged:
                return
            time.sleep(0.2)


def demo_key(store: IngestKeyStore) -> str:
    """A fresh ingest key for the demo org; the demo's keys from earlier runs are revoked first."""
    for key in store.list_keys():
        if key.active and key.name == DEMO_ORG:
            store.revoke(key.id)
    return issue_key(store, [DEMO_ORG], name=DEMO_ORG).key


def run_demo(settings: Settings, days: int, seed: int, reset: bool) -> None:
    """Fill the demo data dir unless it already holds this history, then serve until Ctrl-C."""
    started = time.perf_counter()
    if reset and settings.database_url:
        raise click.UsageError("--reset empties the data dir, not a database: drop and recreate the "
                               "--database-url database to start over")  # fmt: skip
    if reset and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)

    def fill_and_announce(running: Running) -> None:
        threading.Thread(target=_fill, args=(running, days, seed, started), name="demo", daemon=True).start()

    serve(settings, lambda: create_dashboard, after_start=fill_and_announce)


def _fill(running: Running, days: int, seed: int, started: float) -> None:
    if running.storage.log_position().last_seq == 0:
        click.echo(f"generating {days} days of history for org '{DEMO_ORG}' (seed {seed})...", err=True)
        config = GeneratorConfig(days=days, org_id=DEMO_ORG, seed=seed)
        # Stream day by day: generation overlaps sending and the year is never all in memory.
        events = (event for day in generate_days(config) for event in day)
        store = open_ingest_keys(running.settings)  # created once we serve the data dir, not before
        try:
            key = demo_key(store)
        finally:
            store.close()
        stats = send_with_progress(f"{running.ingest_url}/v1/events", events, token=key)
        click.echo(
            f"ingested {stats.accepted:,} events ({stats.duplicates:,} duplicates) in {stats.seconds:.1f} s", err=True
        )
        exports = ((e.path, e.body) for e in agent_exports(window(config)[1], seed))
        taken = send_otlp(running.ingest_url, exports, key)
        click.echo(f"and {taken:,} OpenTelemetry exports from Claude Code, Gemini CLI and Codex users", err=True)
        wait_for_projection(running, running.stop)
        if running.stop.is_set():
            return
        alerts = open_alerts(running.settings)
        try:
            rules = add_demo_rules(running.storage, alerts, config, dt.datetime.now(dt.UTC))
        finally:
            alerts.close()
        click.echo(f"and {len(rules)} alert rules (agentdash alerts list): a budget near its limit, and the bad "
                   "model week's reliability alert in the history", err=True)  # fmt: skip
    else:
        click.echo(f"reusing the {running.storage.log_position().last_seq:,} events already in {running.settings.data_dir}"
                   " (--reset starts over)", err=True)  # fmt: skip
    wait_for_projection(running, running.stop)
    if running.stop.is_set():
        return
    assert running.secret is not None, "the demo runs in dev mode, which has a dev secret"
    token = issue_token(running.secret, DEMO_ORG, "org_admin", "demo-admin", ttl_s=7 * 24 * 3600)
    click.echo(f"ready in {time.perf_counter() - started:.1f} s (from start-up to every event projected)", err=True)
    click.echo(
        f"\n  Dashboard: {running.dashboard_url}/login?token={token}\n  (signed in as the demo org's admin; Ctrl-C stops)\n"
    )
