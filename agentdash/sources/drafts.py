"""What an agent's mapping says a record means: draft events, before the who and where every agent shares."""

from __future__ import annotations

from dataclasses import dataclass

from agentdash.events import MAX_COST_USD
from agentdash.sources.records import Record


class Unmappable(Exception):
    """A record that should become events but lacks what they need; the message says what (counted as rejected)."""


@dataclass(slots=True)  # not frozen: cheaper to make, and nothing keeps a draft
class Draft:
    """One event a record means. `key` tells apart the events of one record, so ids stay deterministic."""

    key: str
    type: str
    occurred_us: int
    run_id: str | None = None
    status: str | None = None
    failure_category: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None
    lines_added: int | None = None  # code.changed
    lines_removed: int | None = None
    commits: int | None = None
    series: str | None = None  # the counts are running totals of this series (a cumulative counter's)


def finished(record: Record, run_id: str, failure: str | None = None, at_us: int | None = None) -> Draft:
    """A run.finished: succeeded, or failed with the category `failure`."""
    status = "failed" if failure else "succeeded"
    return Draft("f", "run.finished", record.time_us if at_us is None else at_us, run_id, status, failure)


def span_run(span: Record, run_id: str) -> list[Draft]:
    """A span that is a whole run: started at its start, finished at its end, failed (`other`) on an ERROR status."""
    return [Draft("s", "run.started", span.time_us, run_id),
            finished(span, run_id, "other" if span.failed else None, at_us=span.end_us or span.time_us)]  # fmt: skip


CODE_COUNTS = ("lines_added", "lines_removed", "commits")


def code_change(point: Record, name: str, model: str | None = None) -> list[Draft]:
    """A counter's data point as a code.changed counting `name` (one of CODE_COUNTS): a delta as counted, at its time;
    a cumulative total as its series' running total, at the series' start (the same for every total of it)."""
    value = point.value
    if value is None or not 0 < value < 2**63:  # 0: nothing changed (Claude sends "0 removed" with each write)
        return []
    if point.series:
        draft = Draft("c", "code.changed", point.start_us or point.time_us, model=model, series=f"otlp-{point.series}")
    else:
        draft = Draft("c", "code.changed", point.time_us, model=model)
    setattr(draft, name, int(value))
    return [draft]


def api_failure(status_code: float | None, error: str | None) -> str:
    """The failure category of a model API error: timeouts apart, no HTTP status at all is the network's fault."""
    text = (error or "").lower()
    if status_code in (408, 504) or "timeout" in text or "timed out" in text:
        return "timeout"
    if status_code is None or status_code == 0:
        return "infra_error"
    return "model_error"


def count(record: Record, key: str) -> int | None:
    """A token count attribute as a non-negative integer, or None when absent or not a count."""
    value = record.number(key)
    if value is None or value < 0 or value != value:
        return None
    return int(value)


def money(record: Record, key: str) -> float | None:
    """A cost attribute in USD, or None when absent or not a cost (negative, NaN). A cost above MAX_COST_USD (or
    infinite) is a real cost the log cannot take: Unmappable, so the record is rejected and counted rather than its
    cost silently dropped (SPEC §6: no api_request cost is dropped) or capped."""
    value = record.number(key)
    if value is None or value < 0 or value != value:
        return None
    if value > MAX_COST_USD:
        raise Unmappable(_COST_TOO_LARGE.format(key=key))
    return float(value)


_COST_TOO_LARGE = f"{{key}} must be a number <= {MAX_COST_USD:.0e} USD".replace("e+", "e")  # "... <= 1e14 USD"
