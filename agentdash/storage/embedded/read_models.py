"""Read models in DuckDB: folded from log chunks, queried by name."""

from __future__ import annotations

import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from agentdash.storage.base import FoldState, LogChunk, StorageError
from agentdash.storage.embedded import cells
from agentdash.storage.queries import load_queries, render

# Bump when the read-model schema or fold changes: older read models are dropped and re-folded from the log.
VERSION = 9  # 3: usage events, cache tokens; 4: pull requests, runs' branch; 5: PRs' titles and urls, code changes
# (5 also: the agent of runs, usage, code changes and PRs); 6: cells (per org, day and team); 7: per-day P95s and
# histograms; 8: cells per user; 9: usage and code cells per model, repo and agent
CHECKPOINT_THRESHOLD = "256MB"
# ... and a fold checkpoints itself once the WAL outgrows the database (with this floor): a small database's WAL
# would otherwise reach 256 MB, several times the data it logs, and replay that long after a crash.
WAL_FLOOR_BYTES = 16 * 1024 * 1024
# The fold's statements run on one thread: on chunks of 1k-250k rows DuckDB's second thread cost ~30% more CPU
# than it saved in wall time, CPU that ingest (on the same cores) then lacks. Queries get the default back after.
FOLD_THREADS = 1
FOLD_STEPS = (
    "fold_runs", "fold_sessions", "fold_activity", "fold_queued", "fold_usage", "fold_code", "fold_prs", "fold_pr_links",
    "fold_pr_texts", "fold_followed_up", "fold_cells",
)  # fmt: skip
# Answers that cells can give instead of the facts: run_metrics when grouped by day, team or user with no finer
# filter (its cells count distinct sessions, per day, team and user only); the sums of usage and code for any query.
CELL_ANSWERS = {"run_metrics": "run_metrics_cells", "usage_metrics": "usage_metrics_cells",
                "code_metrics": "code_metrics_cells"}  # fmt: skip
SUMS_ONLY = ("usage_metrics", "code_metrics")
CELL_GROUPS = ("day", "team_id", "user_id")
FINER_FILTERS = ("model", "repo", "agent")


class DuckdbReadModels:
    """One DuckDB file; the projector writes on the main connection, readers use per-thread cursors."""

    def __init__(self, path: Path, *, cells: bool = True) -> None:
        self._sql = load_queries("duckdb")
        self._path, self._wal = path, path.with_name(path.name + ".wal")
        self.cells = cells  # answer from cells where they can (False: always from the facts, as the tests compare)
        self._db = duckdb.connect(str(path))
        # A checkpoint costs about as much as the tables are large, however little the WAL holds: at DuckDB's
        # 16 MB (~110k events of fold) it cost more than the fold itself at a few 100k events. 256 MB is replayed
        # in ~3 s after a crash (a clean close checkpoints).
        self._db.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        self._threads = self._db.execute("SELECT current_setting('threads')").fetchall()[0][0]
        self._settings = self._db.cursor()  # sets the fold's threads: not a statement of the fold's transaction
        self._db.execute(self._sql["schema"])
        if self._db.execute(self._sql["load_version"]).fetchall()[0][0] != VERSION:  # fetchall: leave no open result
            self.reset()
        self._local = threading.local()
        self._readers = 0  # queries running on cursors: DuckDB refuses to close a connection under them
        self._closing = False
        self._idle = threading.Condition()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self._db.cursor()
        return cursor

    def fold(self, chunk: LogChunk, check: Callable[[list[int]], None] | None = None) -> None:
        """Fold the chunk's table and save its checkpoint in one transaction; `check` is the tests' poison hook."""
        checkpoint = {"seq": chunk.last_seq, "folded_at_us": time.time_ns() // 1000}
        self._transaction(chunk.table, check, lambda db: db.execute(self._sql["save_checkpoint"], checkpoint))
        self._checkpoint_if_the_wal_outgrew()

    def _checkpoint_if_the_wal_outgrew(self) -> None:
        try:
            wal = self._wal.stat().st_size
        except FileNotFoundError:
            return
        if wal > max(WAL_FLOOR_BYTES, self._path.stat().st_size):
            # The fold has committed: a checkpoint refused now is tried again after the next fold.
            with suppress(duckdb.Error):
                self._db.execute("CHECKPOINT")

    def refold(self, table: pa.Table, seqs: list[int], check: Callable[[list[int]], None] | None = None) -> None:
        """Fold dead letters on retry; the checkpoint stays, and `refolded` remembers them in the same transaction."""
        self._transaction(table, check, lambda db: db.execute(self._sql.statement("save_refolded"), {"seqs": seqs}))

    def refolded(self, seqs: list[int]) -> set[int]:
        """Those of these seqs a retry has folded already."""
        rows = self._cursor().execute(self._sql.statement("refolded_seqs"), {"seqs": seqs}).fetchall()
        return {seq for (seq,) in rows}

    def _transaction(
        self,
        table: pa.Table,
        check: Callable[[list[int]], None] | None,
        finish: Callable[[duckdb.DuckDBPyConnection], object],
    ) -> None:
        db = self._db
        self._settings.execute(f"SET threads = {FOLD_THREADS}")  # global in DuckDB: queries too, meanwhile
        db.register("chunk", table)
        try:
            db.execute("BEGIN TRANSACTION")
            try:
                for step in FOLD_STEPS:
                    db.execute(self._sql[step])
                if check is not None:
                    check(table["seq"].to_pylist())
                finish(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.unregister("chunk")
            self._settings.execute(f"SET threads = {self._threads}")

    def fold_state(self) -> FoldState:
        with self._reading():
            row = self._cursor().execute(self._sql["load_checkpoint"]).fetchone()
        return FoldState(seq=row[0], folded_at_us=row[1]) if row else FoldState(seq=0, folded_at_us=None)

    def reset(self) -> None:
        self._db.execute(self._sql["drop_read_models"])
        self._db.execute(self._sql["schema"])
        self._db.execute(self._sql["save_version"], {"version": VERSION})

    def query(self, name: str, params: dict[str, Any]) -> list[tuple]:
        answered_by = self._cell_answer(name, params)
        named: Mapping[str, str] = self._sql
        if answered_by == "run_metrics_cells":
            named = {**self._sql, answered_by: self._with_quantiles(params)}
        sql = render(named, answered_by, params)
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        with self._reading():
            cursor = self._cursor().execute(sql, used)
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        if answered_by == "run_metrics_cells":
            return cells.run_metrics_rows(rows, columns)
        row_type = namedtuple(name, columns)  # type: ignore[misc]
        return [row_type(*row) for row in rows]

    def _with_quantiles(self, params: dict[str, Any]) -> str:
        """run_metrics_cells with its P95 blocks: the day tables' where they hold the whole org's, else the runs'."""
        whole_org = all(params.get(scope) is None for scope in ("team", "teams", "user"))
        by_day = whole_org and params.get("group", "day") == "day"
        groups = self._sql["group_quantiles_of_days" if by_day else "group_quantiles_of_runs"]
        whole = self._sql["range_quantiles_of_histogram" if whole_org else "range_quantiles_of_runs"]
        text = self._sql["run_metrics_cells"]
        return text.replace("{group_quantiles}", groups).replace("{range_quantiles}", whole)

    def _cell_answer(self, name: str, params: dict[str, Any]) -> str:
        """The cells' query that answers `name` as the facts would, else `name`."""
        if not self.cells or name not in CELL_ANSWERS:
            return name
        if name in SUMS_ONLY:  # keyed by every dimension: any grouping, any filter
            return CELL_ANSWERS[name]
        if params.get("group", "day") not in CELL_GROUPS or any(params.get(f) is not None for f in FINER_FILTERS):
            return name
        return CELL_ANSWERS[name]

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._idle:
            if self._closing:
                raise StorageError("the read models are closed")
            self._readers += 1
        try:
            yield
        finally:
            with self._idle:
                self._readers -= 1
                self._idle.notify_all()

    def close(self) -> None:
        """Close once the queries already running have finished (a page's may still run as a server stops)."""
        with self._idle:
            self._closing = True
            self._idle.wait_for(lambda: self._readers == 0, timeout=30)
        self._settings.close()
        self._db.close()
