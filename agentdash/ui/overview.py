"""The overview page: the headline numbers of the six questions for a chosen range."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui

from agentdash.auth import NotAuthorized, verify_token
from agentdash.metrics import MetricsQuery, OrgMetrics, org_metrics
from agentdash.ui import format as fmt

COOKIE = "agentdash_token"
RANGES = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days", 365: "Last 365 days"}


def install(storage, projector, secret: str) -> None:
    """Register the dashboard's routes and pages on NiceGUI's app."""

    @app.get("/login")
    def login(token: str) -> RedirectResponse:
        # The one-click link from `agentdash demo`: keep the token in an HttpOnly cookie, drop it from the URL.
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=8 * 3600)
        return response

    @ui.page("/", title="agentdash")
    def overview(request: Request, days: int = 30) -> None:
        try:
            identity = verify_token(secret, request.cookies.get(COOKIE, ""))
        except NotAuthorized as exc:
            ui.label("Sign in to see your organisation's agent usage").classes("text-h5")
            ui.label(f"{exc}. Open the sign-in link printed by `agentdash demo`, or run `agentdash token`.")
            return
        days = days if days in RANGES else 30
        to = date.today()
        query = MetricsQuery(identity.org_id, to - timedelta(days=days - 1), to,
                             user_id=identity.sub if identity.role == "member" else None)  # fmt: skip
        if identity.role == "manager":
            query = MetricsQuery(query.org_id, query.date_from, to, team_id=(identity.teams or ("",))[0])
        with ui.header().classes("items-center justify-between"):
            ui.label(f"agentdash · {identity.org_id}").classes("text-h6")
            ui.select(RANGES, value=days, on_change=lambda e: ui.navigate.to(f"/?days={e.value}")).props(
                "dense dark outlined aria-label='date range'"
            ).classes("w-48")
        metrics = org_metrics(storage, query)
        status = projector.status()
        _cards(metrics)
        ui.label(
            f"Days are UTC · {query.date_from} – {query.date_to} · data as of the last fold, "
            f"{status.lag_events} events ({status.lag_seconds:.1f} s) behind"
        ).classes("text-caption text-grey q-ma-md")


def _cards(m: OrgMetrics) -> None:
    failures = ", ".join(f"{f.category} {f.runs}" for f in m.failures_by_category[:3]) or "none"
    questions = [
        ("Who uses agents?", [("Active users", fmt.count(m.active_users)), ("DAU / WAU / 30d", f"{m.dau} / {m.wau} / {m.mau}"),
                              ("Runs per user", fmt.count(m.runs_per_user)), ("Sessions per user", fmt.count(m.sessions_per_user))]),
        ("Are they reliable?", [("Success rate", fmt.percent(m.success_rate)), ("Runs", fmt.count(m.runs)),
                                ("Cancelled", fmt.count(m.runs_cancelled)), ("Top failures", failures)]),
        ("How long do tasks take?", [("Avg run", fmt.duration(m.run_duration_avg_s)), ("P95 run", fmt.duration(m.run_duration_p95_s)),
                                     ("Avg queue wait", fmt.duration(m.queue_wait_avg_s)),
                                     ("Agent time / session", fmt.duration(m.active_agent_time_per_session_s))]),
        ("What does it cost?", [("Total", fmt.money(m.cost_usd)), ("Per run", fmt.money(m.cost_per_run_usd)),
                                ("Input tokens", fmt.count(m.input_tokens)), ("Output tokens", fmt.count(m.output_tokens))]),
        ("Do results need human fixes?", [("Handoff rate", fmt.percent(m.handoff_rate)),
                                          ("Iterated within 4 h", fmt.percent(m.post_handoff_iteration_rate))]),
        ("How much iteration?", [("Runs per session", fmt.count(m.runs_per_session)),
                                 ("Session lifespan", fmt.duration(m.session_lifespan_avg_s))]),
    ]  # fmt: skip
    with ui.grid(columns=3).classes("w-full gap-4 q-pa-md"):
        for title, figures in questions:
            with ui.card().classes("w-full"):
                ui.label(title).classes("text-subtitle1 text-weight-medium")
                for name, value in figures:
                    with ui.row().classes("w-full justify-between"):
                        ui.label(name).classes("text-grey-8")
                        ui.label(value).classes("text-weight-bold").props(f"data-metric='{name}'")
