"""Named SQL: the one loader of storage/sql/<dialect>.sql (`-- name: x` blocks, parsed once) and the fragments
metric queries share. Every backend reaches its SQL through `load_queries`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

_NAME = re.compile(r"^-- name: (\w+)\s*$", flags=re.MULTILINE)
_DOLLAR_PARAM = re.compile(r"\$(\w+)")
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?$", flags=re.MULTILINE)


class NamedQueries(Mapping[str, str]):
    """One file's blocks by name, and each block split into statements for drivers that run one per call."""

    def __init__(self, dialect: str, blocks: dict[str, str]) -> None:
        self.dialect = dialect
        self._blocks = blocks
        self._statements = {name: split(sql) for name, sql in blocks.items()}

    def __getitem__(self, name: str) -> str:
        if name not in self._blocks:
            raise self._missing(name)
        return self._blocks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def statements(self, name: str) -> list[str]:
        if name not in self._statements:
            raise self._missing(name)
        return self._statements[name]

    def statement(self, name: str) -> str:
        """The block's one statement, whole-line comments dropped."""
        (only,) = self.statements(name)
        return only

    def _missing(self, name: str) -> KeyError:
        return KeyError(f"storage/sql/{self.dialect}.sql has no block named {name!r}")


@cache
def load_queries(dialect: str, *, pyformat: bool = False) -> NamedQueries:
    """The named blocks of sql/<dialect>.sql. Files write parameters as the driver takes them, except that
    `pyformat` turns `$name` into psycopg's `%(name)s` (the Postgres files share duckdb.sql's `$name` style)."""
    text = resources.files("agentdash.storage").joinpath(f"sql/{dialect}.sql").read_text()
    parts = _NAME.split(text)
    blocks = {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}
    if pyformat:
        blocks = {name: _DOLLAR_PARAM.sub(r"%(\1)s", sql) for name, sql in blocks.items()}
    return NamedQueries(dialect, blocks)


def split(sql: str) -> list[str]:
    """Statements end with `;` at a line end (the named-query files keep to that); whole-line comments go."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in _STATEMENT_END.split(code) if part.strip()]


# Blocks that named queries include by `{name}`; a dialect defines those its queries use.
_FRAGMENTS = ("usage_items", "code_items", "run_metric_columns", "run_filter", "who_filter")
GROUPS = {"day", "team_id", "user_id", "model", "repo", "agent"}


def render(sql: Mapping[str, str], name: str, params: dict[str, Any]) -> str:
    """The named query with its grouping column, filter fragments and activity source filled in.

    Pops `group` from params. Each dialect's file defines the same fragments, so both backends render alike.
    """
    text = sql[name]
    for fragment in _FRAGMENTS:  # outer first: run_filter holds who_filter
        if fragment in sql:
            text = text.replace(f"{{{fragment}}}", sql[fragment])
    if "{group}" in text:
        group = params.pop("group", "day")
        if group not in GROUPS:
            raise ValueError(f"cannot group by {group!r}")
        text = text.replace("{group}", group)
    runs_filtered = any(params.get(name) is not None for name in ("model", "repo", "agent"))
    for table in ("activity", "sessions"):  # neither has a model, repo or agent: see *_of_matching_runs
        text = text.replace(f"{{{table}}}", sql[f"{table}_of_matching_runs"] if runs_filtered else table)
    return text
