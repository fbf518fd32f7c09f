"""GitHub links (SPEC §7, issue 11): the link store on both backends, the in-memory copy the server checks deliveries
against, signatures as GitHub makes them, and how a `pull_request` delivery becomes a PR event with its agent mark."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import BACKENDS

from agentdash.auth.webhook_auth import (
    REFRESH_S,
    BadSignature,
    LinkedSecrets,
    NotLinked,
    WebhookAuth,
    link_github,
    link_table,
    parse_target,
    signature,
    signature_matches,
)
from agentdash.config import Settings
from agentdash.events import InvalidEvent, parse_event
from agentdash.sources.attribution import AGENT_MARKS, BUILT_IN
from agentdash.sources.github import InvalidDelivery, delivery_target, pull_request_event
from agentdash.storage import GithubLinkError, GithubLinkStore, open_github_links

EXAMPLES = Path(__file__).parent / "agents/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
SECRET = "a-webhook-secret-of-enough-length"


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[GithubLinkStore]:
    """The link store of each backend: <data-dir>/github-links.sqlite, or the database's table."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    opened = open_github_links(Settings(data_dir=tmp_path, database_url=url))
    yield opened
    opened.close()


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


# -- the store, one contract for every backend -----------------------------------------------------------------------


def test_links_are_made_listed_replaced_and_removed(store):
    link, replaced = store.link("acme", "", "acme-org", SECRET)
    assert (link.owner, link.repo, link.org_id, link.target, replaced) == ("acme", "", "acme-org", "acme", False)
    store.link("acme", "web", "web-org", "another-secret-0123456789")
    assert [(k.target, k.org_id) for k in store.list_links()] == [("acme", "acme-org"), ("acme/web", "web-org")]
    assert SECRET not in repr(store.list_links()) + repr(store.secrets())  # a secret is never part of a repr
    assert {(s.owner, s.repo, s.org_id, s.secret) for s in store.secrets()} == {
        ("acme", "", "acme-org", SECRET), ("acme", "web", "web-org", "another-secret-0123456789")}  # fmt: skip

    relinked, replaced = store.link("acme", "", "other-org", "a-rotated-secret-0123456789")
    assert replaced and relinked.org_id == "other-org"
    assert [s.secret for s in store.secrets() if not s.repo] == ["a-rotated-secret-0123456789"]

    assert store.unlink("acme", "web").target == "acme/web"
    with pytest.raises(GithubLinkError, match="GitHub repo 'acme/web' is not linked"):
        store.unlink("acme", "web")
    with pytest.raises(GithubLinkError, match="GitHub owner 'nobody' is not linked"):
        store.unlink("nobody", "")
    assert [k.target for k in store.list_links()] == ["acme"]


def test_link_github_validates_and_lowercases(store):
    link, _ = link_github(store, "acme", "Octo-Cat", "Hello.World_1", SECRET)
    assert (link.owner, link.repo) == ("octo-cat", "hello.world_1")
    for org, owner, repo, secret, problem in [
        ("", "acme", "", SECRET, "org id"),
        ("acme", "-bad", "", SECRET, "not a GitHub owner"),
        ("acme", "acme", "bad/name", SECRET, "not a GitHub repository name"),
        ("acme", "acme", "", "short", "at least 16 characters"),
        ("acme", "acme", "", f" {SECRET}", "spaces at its ends"),
    ]:
        with pytest.raises(ValueError, match=problem):
            link_github(store, org, owner, repo, secret)
    assert [k.target for k in store.list_links()] == ["octo-cat/hello.world_1"]
    assert parse_target("Acme/Web") == ("acme", "web") and parse_target("acme") == ("acme", "")


def test_the_table_never_shows_a_secret(store):
    store.link("acme", "", "acme-org", SECRET)
    table = link_table(store.list_links())
    assert table.splitlines()[0].split() == ["OWNER", "REPO", "ORG", "CREATED", "(UTC)"]
    assert table.splitlines()[1].split()[:3] == ["acme", "*", "acme-org"] and SECRET not in table


def test_the_embedded_file_is_private(tmp_path):
    open_github_links(Settings(data_dir=tmp_path)).close()
    assert stat.S_IMODE((tmp_path / "github-links.sqlite").stat().st_mode) == 0o600


# -- the server's in-memory copy and the signature check -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_repo_link_wins_a_new_link_works_at_once_and_a_removed_one_stops_within_a_second(store):
    clock = Clock()
    links = LinkedSecrets(store, clock)
    assert links.find("acme", "web") is None
    store.link("acme", "", "acme-org", SECRET)
    assert links.find("Acme", "Web").org_id == "acme-org"  # new, found at once; names compared case-insensitively
    store.link("acme", "web", "web-org", "another-secret-0123456789")
    clock.now += REFRESH_S
    assert links.find("acme", "web").org_id == "web-org" and links.find("acme", "api").org_id == "acme-org"
    store.unlink("acme", "")
    assert links.find("acme", "api") is not None  # until the next reload ...
    clock.now += REFRESH_S
    assert links.find("acme", "api") is None  # ... at most a second later
    assert links.find("acme", "", look_again=False) is None


def test_signatures_are_githubs(store):
    # GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature("It's a Secret to Everybody", b"Hello, World!") == expected
    assert signature_matches("It's a Secret to Everybody", b"Hello, World!", expected.upper().replace("SHA", "sha"))
    assert not signature_matches("It's a Secret to Everybody", b"Hello, World?", expected)
    assert not signature_matches("It's a Secret to Everybody", b"Hello, World!", "sha256=é")  # no TypeError

    store.link("acme", "", "acme-org", SECRET)
    auth = WebhookAuth(LinkedSecrets(store))
    body = b'{"repository": {"full_name": "acme/web"}}'
    assert auth.verify("acme", "web", body, signature(SECRET, body), "10.0.0.1").org_id == "acme-org"
    with pytest.raises(BadSignature, match="does not match"):
        auth.verify("acme", "web", body, signature("a-wrong-secret-0123456789", body), "10.0.0.1")
    with pytest.raises(NotLinked, match="agentdash github link --org ORG --owner globex"):
        auth.verify("globex", "web", body, signature(SECRET, body), "10.0.0.1")
    with pytest.raises(BadSignature, match="missing X-Hub-Signature-256"):
        auth.require_signature(None, "10.0.0.1")
    with pytest.raises(BadSignature, match="sha256="):
        auth.require_signature("sha1=abc", "10.0.0.1")


# -- deliveries into PR events ---------------------------------------------------------------------------------------


def test_the_delivery_target_is_its_repository_else_its_organization():
    assert delivery_target(json.dumps(examples("ping")[0]).encode()) == ("Octocoders", "Hello-World")
    org_ping = next(x for x in examples("ping") if "repository" not in x)
    assert delivery_target(json.dumps(org_ping).encode()) == (org_ping["organization"]["login"], "")
    for body, problem in [(b"not json", "not JSON"), (b"{}", "names no repository"),
                          (b'{"repository": 5}', "malformed")]:  # fmt: skip
        with pytest.raises(InvalidDelivery, match=problem):
            delivery_target(body)


@pytest.mark.parametrize(
    ("action", "merged", "kind", "at_field"),
    [("opened", False, "pr.opened", "created_at"), ("reopened", False, "pr.opened", "updated_at"),
     ("edited", False, "pr.opened", "created_at"), ("synchronize", False, "pr.opened", "created_at"),
     ("closed", False, "pr.closed", "closed_at"), ("closed", True, "pr.merged", "merged_at")],
)  # fmt: skip
def test_pull_request_actions_become_pr_events(action, merged, kind, at_field):
    payload = pr_example(action, merged)
    delivered = pull_request_event("72d3162e-cc78-11e3-81ab-4c9367dc0958", "acme", json.dumps(payload).encode())
    pr = payload["pull_request"]
    assert delivered.action == action
    assert delivered.event == {
        "id": "gh-72d3162e-cc78-11e3-81ab-4c9367dc0958", "type": kind, "org_id": "acme", "occurred_at": pr[at_field],
        "repo": "Codertocat/Hello-World", "pr_number": 2, "head_branch": "changes", "author": "Codertocat",
        "attributes": {"base_branch": "master", "title": pr["title"], "url": pr["html_url"],
                       **({"agent_mark": "claude-code"} if action == "edited" else {})},
    }  # fmt: skip
    event = parse_event(json.dumps(delivered.event).encode())  # the contract of /v1/events takes it as it is
    assert (event.type, event.repo, event.pr_number, event.author) == (kind, "Codertocat/Hello-World", 2, "Codertocat")


def test_other_pull_request_actions_change_nothing():
    for payload in examples("pull_request"):
        if payload["action"] not in ("opened", "reopened", "closed", "synchronize"):
            assert pull_request_event("d1", "acme", json.dumps(payload).encode()).event is None, payload["action"]
    with pytest.raises(InvalidDelivery, match="not a pull_request delivery"):
        pull_request_event("d1", "acme", json.dumps(examples("ping")[0]).encode())


@pytest.mark.parametrize(
    ("body", "author", "branch", "agent"),
    [("Fixes it.\n\n🤖 Generated with [Claude Code](https://claude.com/claude-code)", "octocat", "fix", "claude-code"),
     ("Generated with Claude Code", "octocat", "fix", "claude-code"),
     ("Fix\n\nCo-Authored-By: Claude <noreply@anthropic.com>", "octocat", "fix", "claude-code"),
     ("Fix\n\nco-authored-by: Claude Opus 4.5 <noreply@anthropic.com>", "octocat", "fix", "claude-code"),
     ("", "octocat", "claude/issue-12-20250101", "claude-code"),
     ("", "Copilot", "fix", "copilot"), ("", "copilot-swe-agent[bot]", "fix", "copilot"),
     ("", "octocat", "copilot/fix-12", "copilot"), ("", "octocat", "codex/add-tests", "codex"),
     ("Claude Code is a tool we like; Co-Authored-By: Claudette", "octocat", "feature/codex/x", None),
     ("", None, "main", None)],
)  # fmt: skip
def test_agent_marks(body, author, branch, agent):
    assert BUILT_IN.agent_mark(body, author, branch) == agent


def test_the_mark_rules_are_data_naming_known_agents():
    assert [m.agent for m in AGENT_MARKS] == ["claude-code", "copilot", "codex"]


def test_an_event_the_contract_refuses_is_an_invalid_event():
    payload = pr_example("opened")
    payload["pull_request"]["head"]["ref"] = "b" * 256  # over head_branch's 255
    delivered = pull_request_event("d1", "acme", json.dumps(payload).encode())
    with pytest.raises(InvalidEvent, match="head_branch"):
        parse_event(json.dumps(delivered.event).encode())
