"""The Sources page (org admins): each agent that sends OpenTelemetry, whether it is connected, and what became
of its records, with the rejection reasons spelled out so that a misconfigured agent can be fixed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from agentdash.auth import Forbidden, NotVisible, visible_sources
from agentdash.storage import AgentSummary, SourcesReport
from agentdash.ui import format as fmt
from agentdash.ui.filters import Filters
from agentdash.ui.layout import DARK_COOKIE, frame
from agentdash.ui.sign_in_redirect import signed_in
from agentdash.ui.view import Sources, View

log = logging.getLogger(__name__)

PATH = "/sources"
CONNECTED_WITHIN = timedelta(hours=1)
REFRESH_SECONDS = 5.0  # the keeper stores counts every 2 s; a redraw happens only when they changed
LOAD_ERROR = "The sources could not be loaded. Try again in a moment; the server log has the details."
STATUS = {  # status -> chip colour, and what it means, for the tooltip
    "connected": ("positive", "records arrived in the last hour"),
    "silent": ("grey-7", "no records in the last hour"),
    "misconfigured": ("negative", "most of its records are rejected: see why below"),
}
_COLUMNS = (("record", "Record", "left"), ("records", "Records", "right"), ("mapped", "Mapped", "right"),
            ("ignored", "Ignored", "right"), ("rejected", "Rejected", "right"),
            ("events_accepted", "Events stored", "right"), ("events_duplicate", "Duplicates", "right"),
            ("why", "Why rejected", "left"))  # fmt: skip


def create(sources: Sources) -> None:
    """Register /sources."""

    @ui.page(PATH, title="Sources · agentdash")
    async def page(request: Request) -> RedirectResponse | None:
        identity = signed_in(request, sources.verifier)
        if isinstance(identity, RedirectResponse):
            return identity
        view = View(identity, Filters.from_params(request.query_params), sources, PATH,
                    dark=request.cookies.get(DARK_COOKIE) == "1")  # fmt: skip
        with frame("Sources", view, filter_bar=False), ui.column().classes("w-full gap-3") as content:
            ui.spinner(size="lg").props("data-testid=loading")
        shown = _Shown()

        async def show() -> None:
            if shown.busy:  # a load is under way; it brings the newest counts
                return
            shown.busy = True
            try:
                report = await run.io_bound(visible_sources, sources.source_store, identity, identity.org_id)
            except (Forbidden, NotVisible) as exc:
                shown.refused, refusal = True, str(exc)
                _replace(content, lambda: _message(refusal, "lock"))
                return
            except Exception:
                log.exception("loading the sources of %s failed", identity.org_id)
                _replace(content, lambda: _message(LOAD_ERROR, "error"))
                return
            finally:
                shown.busy = False
            if report is not None and report != shown.report:  # None: the app is stopping
                shown.report = report
                _replace(content, lambda: draw(report, datetime.now(UTC)))

        timer = ui.timer(REFRESH_SECONDS, show, active=False)  # outside `content`, which every redraw clears
        try:
            await ui.context.client.connected(timeout=10)
        except Exception:  # the browser left before connecting: nothing to draw
            return None
        await show()
        if not shown.refused:  # a refusal will not change: no need to ask again
            timer.activate()
        return None


@dataclass
class _Shown:
    """What a page last drew, and whether it is loading or was refused."""

    report: SourcesReport | None = None
    busy: bool = False
    refused: bool = False


def draw(report: SourcesReport, now: datetime) -> None:
    """A card per agent, or how to connect one when none has sent anything yet."""
    if not report.agents:
        _empty(report.org_id)
    for agent in report.agents:
        _agent_card(agent, now)
    ui.element("span").props("data-testid=sources-ready").mark("sources-ready")


def status(agent: AgentSummary, now: datetime) -> str:
    """misconfigured (most records rejected) before connected (seen in the last hour) before silent."""
    if agent.records and agent.rejected * 2 > agent.records:
        return "misconfigured"
    if agent.last_seen is not None and now - agent.last_seen <= CONNECTED_WITHIN:
        return "connected"
    return "silent"


def ago(then: datetime | None, now: datetime) -> str:
    """'3 min ago', '5 h ago', '2 days ago'; a record stamped a little ahead of our clock is 'just now'."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''} ago"
    return "just now"


def _agent_card(agent: AgentSummary, now: datetime) -> None:
    state = status(agent, now)
    colour, meaning = STATUS[state]
    card = ui.card().classes("w-full gap-2").props("data-testid=agent")
    card._props["data-agent"] = agent.agent  # set, not parsed from a props string: the name is the sender's text
    with card:
        with ui.row().classes("items-center gap-3"):
            ui.icon("smart_toy", size="md").classes("text-primary").props("aria-hidden=true")
            ui.label(agent.agent).classes("text-h6 text-weight-medium").props("data-testid=agent-name")
            ui.chip(state, color=colour, text_color="white").props(f"dense data-testid=status data-status={state}") \
                .tooltip(meaning)  # fmt: skip
        with ui.row().classes("gap-6 text-body2"):
            _fact("Versions", ", ".join(v or "(unknown)" for v in agent.versions) or "—", "versions")
            _fact("People", _people(agent), "people")
            seen = f"{ago(agent.last_seen, now)} ({agent.last_seen:%Y-%m-%d %H:%M} UTC)" if agent.last_seen else "never"
            _fact("Last seen", seen, "last-seen")
            _fact("Records", f"{fmt.count(agent.records)}, {fmt.count(agent.rejected)} rejected", "records")
        _record_table(agent)
        _reasons(agent)


def _fact(name: str, value: str, testid: str) -> None:
    with ui.column().classes("gap-0"):
        ui.label(name).classes("text-caption text-grey")
        ui.label(value).props(f"data-testid={testid}")


def _people(agent: AgentSummary) -> str:
    names = ", ".join(p.user_id for p in agent.people[:5])
    more = " …" if agent.people_count > 5 else ""
    return f"{agent.people_count}" + (f" ({names}{more})" if names else "")


def _record_table(agent: AgentSummary) -> None:
    columns = [{"name": key, "label": label, "field": key, "sortable": key != "why", "align": align}
               for key, label, align in _COLUMNS]  # fmt: skip
    rows = [{"id": i, "record": r.record, "records": r.records, "mapped": r.mapped, "ignored": r.ignored,
             "rejected": r.rejected, "events_accepted": r.events_accepted, "events_duplicate": r.events_duplicate,
             "why": "; ".join(f"{reason} ({n})" for reason, n in r.rejected_because.items())}
            for i, r in enumerate(agent.record_names)]  # fmt: skip
    ui.table(columns=columns, rows=rows, row_key="id", pagination=10).props(
        "dense flat wrap-cells data-testid=record-table"
    ).classes("w-full")


def _reasons(agent: AgentSummary) -> None:
    """Every rejection reason of the agent, most frequent first, as a sentence an admin can act on."""
    totals: dict[str, int] = {}
    for r in agent.record_names:
        for reason, n in r.rejected_because.items():
            totals[reason] = totals.get(reason, 0) + n
    if not totals:
        return
    with ui.column().classes("gap-1").props("data-testid=reasons"):
        ui.label("Why records were rejected").classes("text-subtitle2")
        for reason, n in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
            with ui.row().classes("items-center gap-2 no-wrap"):
                ui.icon("report", color="negative").props("aria-hidden=true")
                ui.label(f"{fmt.count(n)} {'record' if n == 1 else 'records'}: {reason}").props("data-testid=reason")


def _empty(org_id: str) -> None:
    with ui.card().classes("w-full q-pa-lg gap-2").props("data-testid=no-sources").mark("no-sources"):
        with ui.row().classes("items-center gap-3"):
            ui.icon("cable", size="lg").classes("text-grey").props("aria-hidden=true")
            ui.label(f"No agent has sent anything to {org_id} yet").classes("text-subtitle1")
        ui.label("Point Claude Code, Gemini CLI or Codex at agentdash's ingest port. Make a key with the agent's "
                 "settings in it (run this where agentdash keeps its data):")  # fmt: skip
        ui.code(f"agentdash ingest-key create --org {org_id} --for claude-code", language="bash").classes("w-full")
        ui.label("(or --for gemini-cli, --for codex), put the printed settings where the agent reads them, and send "
                 "one prompt: the agent appears here within a few seconds. The README's section “Connect your "
                 "agents” explains each step.")  # fmt: skip


def _replace(content: ui.column, fill: Callable[[], None]) -> None:
    if content.is_deleted:
        return
    content.clear()
    with content:
        fill()


def _message(text: str, icon: str) -> None:
    with ui.card().classes("w-full items-center q-pa-lg"):
        ui.icon(icon, size="lg").classes("text-grey")
        ui.label(text).classes("text-subtitle1").props("data-testid=message")
