"""The run-duration histogram: every run with a duration in exactly one bucket, as the oracle counts them."""

from __future__ import annotations

import datetime as dt

import msgspec
from reference_metrics import load

from agentdash.config import load_settings
from agentdash.demo import GeneratorConfig, generate
from agentdash.events import parse_event
from agentdash.metrics import DURATION_EDGES_S, MetricsQuery, duration_histogram, org_metrics
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.ui import charts

END = dt.date(2026, 4, 30)


def oracle_buckets(events, date_from, date_to, team_id=None) -> list[int]:
    counts = [0] * (len(DURATION_EDGES_S) + 1)
    for run in load(events, "demo").runs.values():
        duration = run.duration_s
        if duration is None or not date_from <= run.day <= date_to or (team_id and run.team_id != team_id):
            continue
        counts[sum(1 for edge in DURATION_EDGES_S if edge <= duration)] += 1
    return counts


def test_histogram_counts_equal_the_oracle_and_the_chart_marks_avg_and_p95(tmp_path):
    events = generate(GeneratorConfig(days=20, scale=0.3, end=END))
    storage = open_storage(load_settings(data_dir=tmp_path / "data"))
    try:
        for start in range(0, len(events), 1000):
            storage.submit([parse_event(msgspec.json.encode(e)) for e in events[start : start + 1000]]).result()
        Projector(storage).catch_up()
        date_from = END - dt.timedelta(days=13)
        team = sorted({e["team_id"] for e in events})[0]
        for team_id in (None, team):
            query = MetricsQuery("demo", date_from, END, team_id=team_id)
            buckets = duration_histogram(storage, query)
            assert [b.runs for b in buckets] == oracle_buckets(events, date_from, END, team_id)
            assert sum(b.runs for b in buckets) > 0
        metrics = org_metrics(storage, MetricsQuery("demo", date_from, END))
        option = charts.duration_histogram(duration_histogram(storage, MetricsQuery("demo", date_from, END)),
                                           metrics.run_duration_avg_s, metrics.run_duration_p95_s)  # fmt: skip
    finally:
        storage.close()
    assert option["series"][0]["data"] == oracle_buckets(events, date_from, END)
    marks = {m["name"]: m for m in option["series"][0]["markLine"]["data"]}
    assert set(marks) == {"avg", "P95"}
    labels = option["xAxis"]["data"]
    assert labels[0].startswith("< ") and labels[-1].startswith("≥ ")
    # the P95 sits in the bucket that holds it
    p95 = metrics.run_duration_p95_s
    index = labels.index(marks["P95"]["xAxis"])
    low = (None, *DURATION_EDGES_S)[index]
    high = (*DURATION_EDGES_S, None)[index]
    assert (low is None or low <= p95) and (high is None or p95 < high)
