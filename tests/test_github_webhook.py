"""POST /v1/github/webhook on a real server (SPEC §7, issue 11): GitHub's own example deliveries, signed as GitHub signs
them, become PR events; forged, unsigned, mis-signed, replayed and unlinked deliveries store nothing; links made,
replaced and removed with the CLI while the server runs take effect without a restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from agentdash.auth import IngestAuth, LinkedSecrets, WebhookAuth
from agentdash.config import Settings
from agentdash.ingest import create_ingest_app
from agentdash.sources import SourceStats
from agentdash.storage import Overloaded, open_github_links, open_storage
from agentdash.testing import ServerProcess

EXAMPLES = Path(__file__).parent / "agents/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
SECRET = "It's a Secret to Everybody, 2026"


def examples(event: str) -> list[dict]:
    """GitHub's own example payloads of one event (@octokit/webhooks-examples, pinned in tests/agents)."""
    if not EXAMPLES.exists():
        pytest.skip("@octokit/webhooks-examples is not installed: run scripts/install-agent-clis (needs npm)")
    return next(e["examples"] for e in json.loads(EXAMPLES.read_text()) if e["name"] == event)


def pr_example(action: str, merged: bool = False) -> dict:
    """The example of `action`; GitHub's set has no merged close nor edited, so those are made from real ones."""
    base = "closed" if action == "closed" else "opened" if action == "edited" else action
    payload = json.loads(json.dumps(next(x for x in examples("pull_request") if x["action"] == base)))
    if action == "edited":
        payload["action"] = "edited"
        payload["changes"] = {"body": {"from": payload["pull_request"]["body"]}}
        payload["pull_request"]["body"] += "\n\n🤖 Generated with [Claude Code](https://claude.com/claude-code)"
    if merged:
        payload["pull_request"].update(merged=True, merged_at=payload["pull_request"]["closed_at"])
    return payload


def sign(body: bytes, secret: str = SECRET) -> str:
    """What GitHub sends in X-Hub-Signature-256: HMAC-SHA256 of the raw body, hex, after `sha256=`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(client: httpx.Client, server: ServerProcess, event: str, payload: dict | bytes, *,
            secret: str | None = SECRET, signature: str | None = None, delivery: str | None = None,
            content_type: str = "application/json") -> httpx.Response:  # fmt: skip
    """POST a delivery as GitHub does: its headers, the body as sent, signed with `secret` (None: unsigned)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    headers = {"content-type": content_type, "x-github-event": event, "user-agent": "GitHub-Hookshot/044aadd",
               "x-github-delivery": delivery or str(uuid.uuid4()), "x-github-hook-id": "292430182"}  # fmt: skip
    if signature or secret:
        headers["x-hub-signature-256"] = signature or sign(body, secret or "")
    return client.post(f"{server.ingest_url}/v1/github/webhook", content=body, headers=headers)


def logged(server: ServerProcess) -> int:
    return server.status()["events_logged"]


def deliveries(server: ServerProcess) -> dict[tuple[str, str], int]:
    return {(c["event"], c["outcome"]): c["deliveries"] for c in server.status()["github_deliveries"]}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # A new connection per delivery: the server closes idle keep-alive connections (--keep-alive-timeout), and a CLI
    # step between two deliveries can outlast that on a busy machine; a request sent on the connection as it closes
    # gets no answer (seen in CI as "Server disconnected without sending a response").
    with httpx.Client(timeout=30, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        yield c


@pytest.fixture
def linked(server: ServerProcess) -> ServerProcess:
    """A server whose GitHub owner Codertocat (the examples' pull requests) belongs to org acme."""
    out = server.cli("github", "link", "--org", "acme", "--owner", "Codertocat", "--secret", SECRET)
    assert out == ""  # the message goes to stderr; stdout holds a secret only with --generate-secret
    return server


def test_githubs_example_deliveries_become_pr_events(linked, client):
    ping = next(x for x in examples("ping") if x["repository"]["full_name"] == "Octocoders/Hello-World")
    assert deliver(client, linked, "ping", ping).status_code == 404  # Octocoders is not linked (yet)
    linked.cli(
        "github", "link", "--org", "globex", "--owner", "octocoders", "--repo", "hello-world", "--secret", SECRET
    )
    pong = deliver(client, linked, "ping", ping)
    assert pong.status_code == 200 and pong.json() == {"outcome": "pong", "event": "ping", "org_id": "globex",
                                                       "zen": ping["zen"]}  # fmt: skip

    before = logged(linked)
    sent = [("opened", False), ("reopened", False), ("edited", False), ("synchronize", False), ("closed", False),
            ("closed", True)]  # fmt: skip
    ids, answers = [], []
    for action, merged in sent:
        delivery = str(uuid.uuid4())
        answer = deliver(client, linked, "pull_request", pr_example(action, merged), delivery=delivery)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
        ids.append(f"gh-{delivery}")
    assert [a["type"] for a in answers] == ["pr.opened"] * 4 + ["pr.closed", "pr.merged"]
    assert all(a["outcome"] == "stored" and a["org_id"] == "acme" for a in answers)
    assert [a["event_id"] for a in answers] == ids
    assert [a.get("agent_mark") for a in answers] == [None, None, "claude-code", None, None, None]
    assert logged(linked) == before + len(sent)  # a 200 means committed

    # GitHub's "Redeliver" sends the same X-GitHub-Delivery: a duplicate, nothing new.
    again = deliver(client, linked, "pull_request", pr_example("opened"), delivery=ids[0].removeprefix("gh-"))
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    labeled = deliver(
        client, linked, "pull_request", next(x for x in examples("pull_request") if x["action"] == "labeled")
    )
    assert labeled.status_code == 202 and labeled.json()["outcome"] == "ignored"
    issues = dict(pr_example("opened"), action="opened")
    assert deliver(client, linked, "issues", issues).status_code == 202  # other events: accepted, counted, ignored
    assert logged(linked) == before + len(sent)
    assert deliveries(linked) == {("ping", "refused"): 1, ("ping", "pong"): 1, ("pull_request.opened", "stored"): 1,
                                  ("pull_request.opened", "duplicate"): 1, ("pull_request.reopened", "stored"): 1,
                                  ("pull_request.edited", "stored"): 1, ("pull_request.synchronize", "stored"): 1,
                                  ("pull_request.closed", "stored"): 2, ("pull_request.labeled", "ignored"): 1,
                                  ("issues", "ignored"): 1}  # fmt: skip

    assert linked.stop() == 0  # then read the log back: exactly the events of PR_OUTCOMES.md
    storage = open_storage(Settings(data_dir=linked.data_dir))
    try:
        stored = {e.event.id: e.event for e in storage.log_entries(0, 10_000) if e.event.id.startswith("gh-")}
    finally:
        storage.close()
    assert sorted(stored) == sorted(ids)
    pr = pr_example("opened")["pull_request"]
    for event_id, (action, _merged) in zip(ids, sent, strict=True):
        event = stored[event_id]
        assert (event.org_id, event.repo, event.pr_number, event.branch, event.author, event.user_id) == (
            "acme", "Codertocat/Hello-World", 2, "changes", "Codertocat", None), action  # fmt: skip
        assert json.loads(event.attributes or "{}")["url"] == pr["html_url"]
    assert stored[ids[2]].agent_mark == "claude-code"
    assert [stored[i].type for i in ids] == ["pr.opened"] * 4 + ["pr.closed", "pr.merged"]


def test_forged_unsigned_mis_signed_and_unlinked_deliveries_store_nothing(linked, client):
    opened = pr_example("opened")
    before = logged(linked)
    body = json.dumps(opened).encode()
    other_body = json.dumps(pr_example("closed")).encode()
    for answer, status, problem in [
        (deliver(client, linked, "pull_request", opened, secret="a forged secret of enough length"), 401,
         "does not match"),
        (deliver(client, linked, "pull_request", opened, secret=None), 401, "missing X-Hub-Signature-256"),
        (deliver(client, linked, "pull_request", body, signature=sign(other_body)), 401, "does not match"),
        (deliver(client, linked, "pull_request", body, signature="sha1=" + "0" * 40), 401, "sha256="),
        (deliver(client, linked, "pull_request", body + b" ", signature=sign(body)), 401, "does not match"),
        (deliver(client, linked, "pull_request", b"not json", signature=sign(b"not json")), 400, "not JSON"),
        (deliver(client, linked, "pull_request", b"payload=" + body, content_type="application/x-www-form-urlencoded"),
         415, "application/json"),
        (deliver(client, linked, "pull_request", body, delivery="not a guid!"), 400, "X-GitHub-Delivery"),
    ]:  # fmt: skip
        assert answer.status_code == status, answer.text
        assert problem in answer.json()["error"], answer.json()
        assert SECRET not in answer.text
    unlinked = json.loads(json.dumps(opened))
    unlinked["repository"]["full_name"] = "someone-else/Hello-World"
    answer = deliver(client, linked, "pull_request", unlinked)
    assert answer.status_code == 404
    assert "'someone-else/Hello-World' is not linked to an agentdash org" in answer.json()["error"]
    assert "agentdash github link --org ORG --owner someone-else" in answer.json()["error"]
    too_big = b'{"repository": {"full_name": "Codertocat/x"}, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    assert deliver(client, linked, "pull_request", too_big).status_code == 413
    assert logged(linked) == before
    assert SECRET not in linked.log()


def test_links_change_while_the_server_runs(linked, client):
    data_dir = str(linked.data_dir)
    assert deliver(client, linked, "pull_request", pr_example("opened")).json()["outcome"] == "stored"
    listing = linked.cli("github", "list")
    assert listing.splitlines()[1].split()[:3] == ["codertocat", "*", "acme"] and SECRET not in listing

    # Rotate: the new secret from stdin (kept out of shell history), the old one refused at once.
    rotated = "a rotated secret, from stdin"
    done = subprocess.run([*linked.command, "github", "link", "--org", "acme", "--owner", "codertocat", "--secret", "-",
                           "--data-dir", data_dir], input=rotated + "\n", capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout == "" and "re-linked GitHub codertocat to org acme" in done.stderr
    deadline = time.monotonic() + 2
    while deliver(client, linked, "pull_request", pr_example("opened")).status_code != 401:
        assert time.monotonic() < deadline, "the old secret still works 2 s after the rotation"
        time.sleep(0.05)
    assert deliver(client, linked, "pull_request", pr_example("opened"), secret=rotated).status_code == 200

    # One repo to another org, with a generated secret printed once: the repo's link wins over the owner's.
    generated = linked.cli("github", "link", "--org", "globex", "--owner", "Codertocat", "--repo", "Hello-World",
                           "--generate-secret")  # fmt: skip
    assert len(generated) >= 40 and generated not in linked.cli("github", "list")
    deadline = time.monotonic() + 2  # the server re-reads its links at most once a second
    while (
        answer := deliver(client, linked, "pull_request", pr_example("closed"), secret=generated)
    ).status_code == 401:
        assert time.monotonic() < deadline, "the new repo link does not work 2 s after it was made"
        time.sleep(0.05)
    assert answer.status_code == 200 and answer.json()["org_id"] == "globex"

    assert (
        linked.cli("github", "unlink", "codertocat/hello-world")
        == "unlinked GitHub codertocat/hello-world (org globex)"
    )
    assert linked.cli("github", "unlink", "Codertocat") == "unlinked GitHub codertocat (org acme)"
    deadline = time.monotonic() + 2
    while deliver(client, linked, "pull_request", pr_example("opened"), secret=rotated).status_code != 404:
        assert time.monotonic() < deadline, "an unlinked owner's deliveries are still taken 2 s later"
        time.sleep(0.05)
    with pytest.raises(RuntimeError, match="GitHub owner 'codertocat' is not linked"):
        linked.cli("github", "unlink", "codertocat")
    for args, problem in [(("--secret", "short"), "at least 16 characters"),
                          ((), "exactly one of --secret"),
                          (("--secret", SECRET, "--generate-secret"), "exactly one of --secret")]:  # fmt: skip
        with pytest.raises(RuntimeError, match=problem):
            linked.cli("github", "link", "--org", "acme", "--owner", "codertocat", *args)
    assert "no GitHub links yet" in linked.cli("github", "list")


class FullStorage:
    """A storage whose log writer's queue is full."""

    def submit(self, events):
        raise Overloaded("the log writer's queue is full")


def test_a_full_log_answers_503_with_retry_after(tmp_path):
    """GitHub shows the 503 and lets the operator redeliver; in-process, as a real log is hard to fill on cue."""
    store = open_github_links(Settings(data_dir=tmp_path))
    store.link("codertocat", "", "acme", SECRET)
    app = create_ingest_app(FullStorage(), None, IngestAuth(None), SourceStats(), WebhookAuth(LinkedSecrets(store)))  # type: ignore[arg-type]
    body = json.dumps(pr_example("opened")).encode()
    headers = {"content-type": "application/json", "x-github-event": "pull_request",
               "x-github-delivery": str(uuid.uuid4()), "x-hub-signature-256": sign(body)}  # fmt: skip
    with TestClient(app) as client:
        answer = client.post("/v1/github/webhook", content=body, headers=headers)
        assert "post" in client.get("/schema/openapi.json").json()["paths"]["/v1/github/webhook"]
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1", answer.text
