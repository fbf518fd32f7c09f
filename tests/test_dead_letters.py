"""Dead letters (issue 13.1): an entry the fold fails on is set aside and the rest folds on; retry, drop, restart.

A fold is made to fail through the storages' `poison` test hook (see .ai/BACKEND_ARCHITECTURE.md "Dead letters" for
why no real value does it): it fails the fold's transaction just before COMMIT, as a database refusing a value would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from litestar.testing import TestClient
from support import ORG, POSTGRES, Backend, all_metrics, all_oracle, assert_same, random_events, submit

from agentdash.auth import Identity, IngestAuth, LinkedSecrets, WebhookAuth
from agentdash.config import Settings, load_settings
from agentdash.ingest import create_ingest_app
from agentdash.projector import Projector
from agentdash.sources import SourceStats
from agentdash.storage import DeadLetterError, LoggedEvent, Storage, StorageError, open_github_links
from agentdash.storage.embedded.storage import EmbeddedStorage
from agentdash.testing import ServerProcess
from agentdash.ui.filters import Filters
from agentdash.ui.freshness import admin_dead_letters, freshness_text
from agentdash.ui.view import Sources, View

EVENTS = random_events(seed=13, n_sessions=8)


def open_poisoned(backend: Backend, poisoned: set[str]) -> Storage:
    """The backend's storage whose folds fail on the events whose ids are in `poisoned` (a live set)."""

    def poison(entry: LoggedEvent) -> bool:
        return entry.event.id in poisoned

    if backend.name == "postgres":
        from agentdash.storage.postgres.storage import PostgresStorage

        return PostgresStorage(backend.database_url, poison=poison)
    return EmbeddedStorage(load_settings(data_dir=backend.data_dir), poison=poison)


def ids_of(*types: str, org: str = ORG) -> list[str]:
    return [e["id"] for e in EVENTS if e["type"] in types and e["org_id"] == org]


def without(ids: set[str]) -> list[dict]:
    return [e for e in EVENTS if not (e["id"] in ids and e["org_id"] == ORG)]


def fold_all(storage: Storage, chunk_size: int = 250_000) -> Projector:
    projector = Projector(storage, chunk_size)
    projector.catch_up()
    return projector


def status_of(storage: Storage, projector: Projector, tmp_path) -> dict:
    """GET /status of the ingest app over this storage."""
    links = open_github_links(Settings(data_dir=tmp_path / "links"))
    app = create_ingest_app(storage, projector, IngestAuth(None), SourceStats(), WebhookAuth(LinkedSecrets(links)))
    try:
        with TestClient(app) as client:
            return client.get("/status").json()
    finally:
        links.close()


# The poisoned event's id may also be an OTHER_ORG event's: the hook then refuses that copy too. Pick ids only o1 has.
def only_o1(ids: list[str]) -> list[str]:
    other = {e["id"] for e in EVENTS if e["org_id"] != ORG}
    return [i for i in ids if i not in other]


def test_one_poisoned_event_is_set_aside_and_everything_else_folds_exactly(backend, tmp_path):
    bad = only_o1(ids_of("run.finished"))[2]
    assert all_oracle(without({bad})) != all_oracle(EVENTS)  # the event counts: leaving it out shows
    poisoned = {bad}
    storage = open_poisoned(backend, poisoned)
    try:
        submit(storage, EVENTS)
        projector = fold_all(storage)
        assert_same(all_metrics(storage), all_oracle(without({bad})))
        assert storage.fold_state().seq == storage.log_position().last_seq  # the checkpoint moved past it
        (letter,) = storage.dead_letters.list_letters()
        assert (letter.org_id, letter.event_id, letter.type, letter.state, letter.attempts) == (
            ORG, bad, "run.finished", "dead", 1)  # fmt: skip
        assert f"the test hook refuses event {bad!r}" in letter.error and "Poisoned" in letter.error
        status = status_of(storage, projector, tmp_path)
        assert status["dead_letters"] == 1 and status["lag_events"] == 0
        assert storage.dead_letters.count(ORG) == 1 and storage.dead_letters.count("o2") == 0

        # A retry while the cause is still there: it stays dead, one attempt more, and nothing else changes.
        storage.dead_letters.request_retry([letter.seq])
        projector.catch_up()
        (again,) = storage.dead_letters.list_letters()
        assert (again.seq, again.state, again.attempts) == (letter.seq, "dead", 2)
        assert_same(all_metrics(storage), all_oracle(without({bad})))

        # The cause gone, a retry folds it: the metrics are then those of every event.
        poisoned.clear()
        storage.dead_letters.request_retry()
        projector.catch_up()
        assert storage.dead_letters.list_letters() == []
        assert_same(all_metrics(storage), all_oracle(EVENTS))
        assert status_of(storage, projector, tmp_path)["dead_letters"] == 0
        projector.catch_up()  # a retried entry is folded once: another pass changes nothing
        assert_same(all_metrics(storage), all_oracle(EVENTS))
    finally:
        storage.close()


def test_a_bisect_isolates_exactly_the_bad_entries(backend):
    """Several bad entries in one chunk, the first and the last of the log among them; then across chunks."""
    ids = only_o1(ids_of("run.finished", "usage", "message.sent", "run.started"))
    bad = {ids[0], ids[3], ids[4], ids[-1]}
    if EVENTS[-1]["org_id"] == ORG and EVENTS[-1]["id"] not in bad and EVENTS[-1]["id"] in ids:
        bad.add(EVENTS[-1]["id"])
    storage = open_poisoned(backend, set(bad))
    try:
        submit(storage, EVENTS)
        fold_all(storage)
        letters = storage.dead_letters.list_letters()
        assert {d.event_id for d in letters} == bad
        assert all(d.attempts == 1 and d.state == "dead" for d in letters)
        assert_same(all_metrics(storage), all_oracle(without(bad)))
        assert storage.fold_state().seq == storage.log_position().last_seq

        # The same isolation with small chunks: a rebuild skips the dead letters, so it buries nothing new.
        storage.reset_read_models()
        fold_all(storage, chunk_size=7)
        assert storage.dead_letters.list_letters() == letters
        assert_same(all_metrics(storage), all_oracle(without(bad)))
    finally:
        storage.close()


def test_drop_forgets_for_good_and_is_recorded(backend):
    bad = only_o1(ids_of("usage", "run.finished"))[:2]
    poisoned = set(bad)
    storage = open_poisoned(backend, poisoned)
    try:
        submit(storage, EVENTS)
        projector = fold_all(storage)
        first, second = storage.dead_letters.list_letters()
        (dropped,) = storage.dead_letters.drop([first.seq])
        assert dropped.seq == first.seq
        assert [d.seq for d in storage.dead_letters.list_letters()] == [second.seq]
        assert [(d.seq, d.state) for d in storage.dead_letters.list_letters(include_dropped=True)] == [
            (first.seq, "dropped"), (second.seq, "dead")]  # fmt: skip
        with pytest.raises(DeadLetterError, match=f"no dead letter {first.seq}"):
            storage.dead_letters.request_retry([first.seq])
        with pytest.raises(DeadLetterError):  # one unknown id: nothing is dropped
            storage.dead_letters.drop([second.seq, 999_999])
        assert storage.dead_letters.count() == 1

        # Dropped stays out, also when its cause is gone and everything is retried and rebuilt.
        poisoned.clear()
        storage.dead_letters.request_retry()
        projector.catch_up()
        assert_same(all_metrics(storage), all_oracle(without({first.event_id})))
        storage.reset_read_models()
        fold_all(storage)
        assert_same(all_metrics(storage), all_oracle(without({first.event_id})))
        assert storage.dead_letters.count() == 0
    finally:
        storage.close()


def test_a_restart_keeps_the_dead_letters_and_does_not_fold_them(backend):
    bad = only_o1(ids_of("run.finished"))[0]
    storage = open_poisoned(backend, {bad})
    try:
        submit(storage, EVENTS)
        fold_all(storage)
    finally:
        storage.close()
    reopened = backend.open()  # no hook: the entry would fold now, but nothing asked for it
    try:
        fold_all(reopened)
        assert [d.event_id for d in reopened.dead_letters.list_letters()] == [bad]
        assert_same(all_metrics(reopened), all_oracle(without({bad})))
        reopened.reset_read_models()  # `agentdash rebuild`: still left out until retried
        fold_all(reopened)
        assert_same(all_metrics(reopened), all_oracle(without({bad})))
    finally:
        reopened.close()


def test_a_retry_interrupted_after_its_fold_is_not_folded_twice(tmp_path):
    """Embedded: the read models commit a retry's fold before the dead-letter file forgets it. Stopped in between,
    the next retry must only forget it: usage is a multiset, folded twice it would count twice."""
    bad = only_o1(ids_of("usage"))[0]
    poisoned = {bad}
    backend = Backend("embedded", tmp_path / "data")
    storage = open_poisoned(backend, poisoned)
    try:
        submit(storage, EVENTS)
        fold_all(storage)
        (letter,) = storage.dead_letters.request_retry()
        poisoned.clear()
        models, log = storage._models, storage._log  # type: ignore[attr-defined]  # white box: the fold, no forget
        models.refold(log.read_at([letter.seq]), [letter.seq])
    finally:
        storage.close()
    reopened = backend.open()
    try:
        assert reopened.dead_letters.to_retry() == [letter.seq]
        fold_all(reopened)
        assert reopened.dead_letters.list_letters() == []
        assert_same(all_metrics(reopened), all_oracle(EVENTS))
    finally:
        reopened.close()


def test_a_fold_that_fails_whatever_it_holds_buries_nothing(backend):
    """A full disk fails every fold, even one of no entries: no entry is at fault, so none is buried (else all
    would be); the tick fails and the next one, with space again, folds everything."""
    storage = backend.open()
    try:
        submit(storage, EVENTS[:40])
        models = storage._models  # type: ignore[attr-defined]  # white box: the read models' fold
        real = models.fold

        def full(*args):
            raise StorageError("database or disk is full")

        models.fold = full
        with pytest.raises(StorageError, match="disk is full"):
            Projector(storage).catch_up()
        assert storage.dead_letters.list_letters(include_dropped=True) == []
        assert storage.fold_state().seq == 0
        models.fold = real
        fold_all(storage)
        assert storage.fold_state().seq == 40 and storage.dead_letters.count() == 0
    finally:
        storage.close()


def test_a_lost_database_buries_nothing(backend):
    """Unavailable is no entry's fault: the fold fails, and the next one starts again from the checkpoint."""
    from agentdash.storage import Unavailable

    storage = backend.open()
    try:
        submit(storage, EVENTS[:20])
        real = storage.fold
        calls = []

        def lost(chunk):
            calls.append(chunk.last_seq)
            raise Unavailable("the database went away")

        storage.fold = lost  # type: ignore[method-assign]
        with pytest.raises(Unavailable):
            Projector(storage).catch_up()
        assert len(calls) == 1 and storage.dead_letters.list_letters() == []
        storage.fold = real  # type: ignore[method-assign]
        fold_all(storage)
        assert storage.fold_state().seq == 20
    finally:
        storage.close()


def test_the_freshness_line_counts_them_for_the_org_s_admins(backend):
    bad = only_o1(ids_of("run.finished"))[0]
    storage = open_poisoned(backend, {bad})
    try:
        submit(storage, EVENTS)
        projector = fold_all(storage)

        def seen_by(org: str, role: str) -> int | None:
            sources = Sources(storage, projector, verifier=None)  # type: ignore[arg-type]  # never asked here
            return admin_dead_letters(View(Identity("someone", org, role), Filters.preset(), sources, "/"))

        assert seen_by(ORG, "org_admin") == 1
        assert seen_by(ORG, "manager") is None and seen_by(ORG, "member") is None
        assert seen_by("o2", "org_admin") == 0  # another org's admins: their own org's count
    finally:
        storage.close()
    assert freshness_text(None, 0, 2) == "No data folded yet · 0 events behind · 2 dead letters (agentdash dlq list)"
    assert freshness_text(1_767_225_600_000_000, 0, 0).endswith("0 events behind")  # none: nothing said
    assert freshness_text(1_767_225_600_000_000, 0, None).endswith("0 events behind")  # not an admin


def _wait(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_dlq_commands_work_while_a_server_runs(backend, tmp_path):
    """The real server and CLI: the letters of an earlier run are listed, one retried (the server folds it), one
    dropped; /status counts them."""
    retried, dropped = only_o1(ids_of("run.finished"))[1:3]
    storage = open_poisoned(backend, {retried, dropped})
    try:
        submit(storage, EVENTS)
        fold_all(storage)
        seq_of = {d.event_id: d.seq for d in storage.dead_letters.list_letters()}
    finally:
        storage.close()
    server = ServerProcess(backend.data_dir, database_url=backend.database_url).start()
    try:
        assert server.status()["dead_letters"] == 2
        listing = server.cli("dlq", "list")
        assert retried in listing and dropped in listing and "the test hook refuses" in listing
        assert f"dropped {seq_of[dropped]}" in server.cli("dlq", "drop", str(seq_of[dropped]))
        out = server.cli("dlq", "retry", str(seq_of[retried]))
        assert "marked 1 for retry" in out or f"{seq_of[retried]}: folded" in out, out
        _wait(lambda: server.status()["dead_letters"] == 0)
        assert server.cli("dlq", "list") == "no dead letters"
        assert str(seq_of[dropped]) in server.cli("dlq", "list", "--dropped")
        with pytest.raises(RuntimeError, match="no dead letter 424242"):
            server.cli("dlq", "drop", "424242")
    finally:
        server.stop()
    reopened = backend.open()
    try:
        assert_same(all_metrics(reopened), all_oracle(without({dropped})))
    finally:
        reopened.close()


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_workers_sharing_the_fold_bury_each_bad_entry_once(backend):
    """Two workers' projectors on one database, folding and bisecting at the same time under the fold lock."""
    bad = set(only_o1(ids_of("run.finished", "usage"))[1:6:2])
    workers = [open_poisoned(backend, bad) for _ in range(2)]
    try:
        submit(workers[0], EVENTS)
        projectors = [Projector(w, chunk_size=40) for w in workers]
        threads = [threading.Thread(target=p.catch_up) for p in projectors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        while projectors[0].catch_up():  # whatever a skipped tick left
            pass
        letters = workers[0].dead_letters.list_letters()
        assert sorted(d.event_id for d in letters) == sorted(bad)
        assert all(d.attempts == 1 for d in letters)  # buried by either worker, or by both: one failure each
        assert workers[0].fold_state().seq == workers[0].log_position().last_seq
        assert_same(all_metrics(workers[0]), all_oracle(without(bad)))
    finally:
        for w in workers:
            w.close()
