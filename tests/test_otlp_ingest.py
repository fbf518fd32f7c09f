"""OTLP/HTTP into a real server: the exports the real agent CLIs sent (recorded in tests/data/otlp by
scripts/record_agent_otlp.py), replayed over JSON and protobuf; SPEC §6's answers, limits and mapping."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse

from tests.otlp_captures import as_protobuf, capture, with_resource


def send(server, key: str, export: dict, encoding: str = "json", gzipped: bool = False) -> httpx.Response:
    if encoding == "json":
        body, media = json.dumps(export["body"]).encode(), "application/json"
    else:
        body, media = as_protobuf(export), "application/x-protobuf"
    headers = {"content-type": media, "authorization": f"Bearer {key}"}
    if gzipped:
        body, headers["content-encoding"] = gzip.compress(body), "gzip"
    return httpx.post(f"{server.ingest_url}/v1/{export['signal']}", content=body, headers=headers, timeout=30)


def log_records(exports: list[dict]) -> list[dict]:
    """Every log record with its attributes as plain values (what the CLI said, to assert against)."""
    found = []
    for export in exports:
        for resource_logs in export["body"].get("resourceLogs", []) if export["signal"] == "logs" else []:
            for scope_logs in resource_logs.get("scopeLogs", []):
                for record in scope_logs.get("logRecords", []):
                    attrs = {a["key"]: next(iter(a["value"].values()), None) for a in record.get("attributes", [])
                             if a.get("value")}  # fmt: skip
                    found.append({"time": int(record["timeUnixNano"]), **attrs})
    return found


def named(records: list[dict], name: str) -> list[dict]:
    return [r for r in records if r.get("event.name") in (name, f"gemini_cli.{name}")]


def metrics(server, org: str, day: date) -> dict:
    return server.org_metrics(org, day, day)


def day_of(records: list[dict]) -> date:
    return datetime.fromtimestamp(records[0]["time"] / 1e9, tz=UTC).date()


@pytest.fixture
def otlp_server(server):
    server.otlp_key = server.create_ingest_key("acme", name="otlp")
    return server


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_claude_code_prompt_with_a_failed_tool_call_is_a_succeeded_run_with_every_cost(otlp_server, encoding):
    exports = capture("claude", "tool_call_failed")
    for export in exports:
        answer = send(otlp_server, otlp_server.otlp_key, export, encoding)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(
            "application/" + ("json" if encoding == "json" else "x-protobuf")
        )
    otlp_server.wait_projected()
    records = log_records(exports)
    requests = named(records, "api_request")
    got = metrics(otlp_server, "acme", day_of(records))
    assert got["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in requests))
    assert got["input_tokens"] == sum(int(r["input_tokens"]) for r in requests)
    assert got["output_tokens"] == sum(int(r["output_tokens"]) for r in requests)
    assert got["cache_read_tokens"] == sum(int(r["cache_read_tokens"]) for r in requests)
    assert got["cache_write_tokens"] == sum(int(r["cache_creation_tokens"]) for r in requests)
    assert (got["runs"], got["runs_finished"], got["success_rate"]) == (1, 1, 1.0)  # the agent recovered
    assert got["active_users"] == 1


def test_claude_code_exhausted_retries_are_a_failed_run(otlp_server):
    exports = capture("claude", "api_error_exhausted")
    for export in exports:
        assert send(otlp_server, otlp_server.otlp_key, export, "protobuf").status_code == 200
    otlp_server.wait_projected()
    got = metrics(otlp_server, "acme", day_of(log_records(exports)))
    assert (got["runs"], got["runs_finished"], got["success_rate"]) == (1, 1, 0.0)
    assert got["failures_by_category"] == [{"category": "model_error", "runs": 1}]


def test_two_prompts_in_one_session_are_two_runs_and_a_resend_moves_nothing(server_factory, tmp_path):
    for agent in ("claude", "gemini"):
        server = server_factory(tmp_path / agent)  # one server per agent: both recordings fall on the same day
        key = server.create_ingest_key("acme", name="otlp")
        # Gemini CLI with an API key names no user: the README's settings add user.email as a resource attribute.
        exports = [with_resource(e, **{"user.email": "dev@example.com"})
                   for e in capture(agent, "two_prompts_one_session")]  # fmt: skip
        for export in exports:
            assert send(server, key, export).status_code == 200
        server.wait_projected()
        day = day_of(log_records(exports))
        first = metrics(server, "acme", day)
        for export in exports:  # an exporter's retry, in the other encoding and gzipped
            assert send(server, key, export, "protobuf", gzipped=True).status_code == 200
        server.wait_projected()
        assert metrics(server, "acme", day) == first
        assert (first["runs"], first["sessions"], first["active_users"]) == (2, 1, 1), agent
        server.stop()


def test_records_without_a_user_are_rejected_with_the_reason_and_the_rest_is_stored(otlp_server):
    exports = capture("gemini", "one_prompt")  # Gemini CLI with an API key sends no user attribute
    answers = [send(otlp_server, otlp_server.otlp_key, export) for export in exports if export["signal"] == "logs"]
    partial = [a.json().get("partialSuccess", {}) for a in answers]
    meaningful = [r for r in log_records(exports) if r.get("event.name") in ("gemini_cli.user_prompt",
                                                                            "gemini_cli.api_response")]  # fmt: skip
    assert sum(int(p.get("rejectedLogRecords", 0)) for p in partial) == len(meaningful) > 0  # the rest is ignored
    assert any("no user: set user.email" in p.get("errorMessage", "") for p in partial)


def test_codex_turns_come_from_its_spans_and_its_tokens_from_its_logs(otlp_server):
    exports = [with_resource(e, **{"user.email": "dev@example.com"}) for e in capture("codex", "traces_on")]
    for export in exports:
        assert send(otlp_server, otlp_server.otlp_key, export, "protobuf").status_code == 200
    otlp_server.wait_projected()
    completed = [r for r in log_records(exports) if r.get("event.name") == "codex.sse_event"
                 and "input_token_count" in r]  # fmt: skip
    spans = [e for e in exports if e["signal"] == "traces"]
    first_span = spans[0]["body"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    day = datetime.fromtimestamp(int(first_span["startTimeUnixNano"]) / 1e9, tz=UTC).date()
    got = metrics(otlp_server, "acme", day)
    assert (got["runs"], got["runs_finished"], got["success_rate"]) == (1, 1, 1.0)
    assert got["cache_read_tokens"] == sum(int(r["cached_token_count"]) for r in completed)
    assert got["input_tokens"] == sum(int(r["input_token_count"]) - int(r["cached_token_count"]) for r in completed)
    assert got["cost_usd"] == 0  # Codex reports no cost


def test_status_counts_records_per_agent_and_name(otlp_server):
    for export in capture("claude", "one_prompt"):
        send(otlp_server, otlp_server.otlp_key, export)
    counts = {(c["agent"], c["record"]): c for c in otlp_server.status()["otlp_records"]}
    assert counts[("claude-code", "claude_code.api_request")]["mapped"] >= 1
    assert counts[("claude-code", "claude_code.plugin_loaded")]["ignored"] >= 1
    assert counts[("claude-code", "claude_code.cost.usage")]["ignored"] >= 1  # a metric: counted, not an error


def test_a_key_for_several_orgs_rejects_records_without_agentdash_org_id(otlp_server):
    export = capture("claude", "one_prompt")[0]
    answer = send(otlp_server, otlp_server.ingest_key, export)  # the default test key writes three orgs
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) >= 1
    assert "agentdash.org_id" in partial["errorMessage"]


def test_undecodable_bodies_are_400_with_a_status_in_the_request_encoding(otlp_server):
    headers = {"authorization": f"Bearer {otlp_server.otlp_key}"}
    answer = httpx.post(f"{otlp_server.ingest_url}/v1/logs", content=b"\xff\x00garbage",
                        headers={**headers, "content-type": "application/x-protobuf"})  # fmt: skip
    assert answer.status_code == 400
    status = Status.FromString(answer.content)
    assert "protobuf" in status.message
    answer = httpx.post(f"{otlp_server.ingest_url}/v1/logs", content=b"{nope",
                        headers={**headers, "content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 400 and "not JSON" in answer.json()["message"]
    answer = httpx.post(
        f"{otlp_server.ingest_url}/v1/logs", content=b"{}", headers={**headers, "content-type": "text/plain"}
    )
    assert answer.status_code == 415


def test_no_key_is_401_and_stores_nothing(otlp_server):
    export = capture("claude", "one_prompt")[0]
    answer = httpx.post(f"{otlp_server.ingest_url}/v1/logs", content=json.dumps(export["body"]),
                        headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 401
    assert otlp_server.status()["events_logged"] == 0


def test_gzip_bomb_is_413(otlp_server):
    body = gzip.compress(b"\x00" * (20 * 1024 * 1024))
    answer = httpx.post(f"{otlp_server.ingest_url}/v1/logs", content=body, timeout=30,
                        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip",
                                 "authorization": f"Bearer {otlp_server.otlp_key}"})  # fmt: skip
    assert answer.status_code == 413


def test_empty_export_is_an_empty_success(otlp_server):
    answer = httpx.post(f"{otlp_server.ingest_url}/v1/logs", content=ExportLogsServiceRequest().SerializeToString(),
                        headers={"content-type": "application/x-protobuf",
                                 "authorization": f"Bearer {otlp_server.otlp_key}"})  # fmt: skip
    assert answer.status_code == 200
    assert ExportLogsServiceResponse.FromString(answer.content).partial_success.rejected_log_records == 0
