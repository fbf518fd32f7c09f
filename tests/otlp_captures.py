"""The exports the real agent CLIs sent (tests/data/otlp/<agent>/<scenario>.json, recorded by
scripts/record_agent_otlp.py), as the tests replay them: JSON bodies, protobuf bytes, one record per export."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentdash.sources.otlp_decode import hex_ids_to_base64

CAPTURES = Path(__file__).parent / "data" / "otlp"
AGENTS = ("claude", "gemini", "codex")
REQUESTS = {"logs": ExportLogsServiceRequest, "metrics": ExportMetricsServiceRequest,
            "traces": ExportTraceServiceRequest}  # fmt: skip
_RESOURCES = {"logs": ("resourceLogs", "scopeLogs", "logRecords"),
              "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
              "traces": ("resourceSpans", "scopeSpans", "spans")}  # fmt: skip


def capture(agent: str, scenario: str) -> list[dict]:
    path = CAPTURES / agent / f"{scenario}.json"
    if not path.exists():
        pytest.skip(f"no recording {path} (scripts/record_agent_otlp.py makes them)")
    return json.loads(path.read_text())


def scenarios(agent: str) -> list[str]:
    return sorted(p.stem for p in (CAPTURES / agent).glob("*.json"))


def message(export: dict):
    found = REQUESTS[export["signal"]]()
    json_format.ParseDict(hex_ids_to_base64(export["body"]), found)
    return found


def as_protobuf(export: dict) -> bytes:
    return message(export).SerializeToString()


def split(export: dict) -> list[dict]:
    """The same records, one per export: what a different batching of the exporter would send."""
    resources_key, scopes_key, items_key = _RESOURCES[export["signal"]]
    found = []
    for resource in export["body"].get(resources_key, []):
        for scope in resource.get(scopes_key, []):
            for item in scope.get(items_key, []):
                body = {resources_key: [{**resource, scopes_key: [{**scope, items_key: [item]}]}]}
                found.append({**export, "body": body})
    return found


def with_resource(export: dict, **attributes: str) -> dict:
    """The export with these resource attributes added (what OTEL_RESOURCE_ATTRIBUTES would have set)."""
    changed = copy.deepcopy(export)
    resources_key = _RESOURCES[export["signal"]][0]
    for resource in changed["body"].get(resources_key, []):
        kept = [a for a in resource.setdefault("resource", {}).get("attributes", []) if a["key"] not in attributes]
        resource["resource"]["attributes"] = kept + [
            {"key": k, "value": {"stringValue": v}} for k, v in attributes.items()
        ]
    return changed


def later_totals(export: dict, metric: str, totals: list[tuple[int, int]]) -> list[dict]:
    """Exports of the same cumulative series at later times (seconds after the recorded point, new total), as a
    longer-running CLI would have sent them periodically: only `metric`, its points' time and value changed."""
    found = []
    for seconds, total in totals:
        changed = copy.deepcopy(export)
        for resource in changed["body"]["resourceMetrics"]:
            for scope in resource["scopeMetrics"]:
                scope["metrics"] = [m for m in scope["metrics"] if m["name"] == metric]
                for point in (p for m in scope["metrics"] for p in m["sum"]["dataPoints"]):
                    point["timeUnixNano"] = str(int(point["timeUnixNano"]) + seconds * 1_000_000_000)
                    point.pop("asDouble", None)
                    point["asInt"] = total
        found.append(changed)
    return found
