"""Named SQL: `-- name: x` blocks in storage/sql/<dialect>.sql, loaded once, and the fragments metric queries share."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_queries(dialect: str) -> dict[str, str]:
    text = resources.files("agentdash.storage").joinpath(f"sql/{dialect}.sql").read_text()
    blocks = re.split(r"^-- name: (\w+)\s*$", text, flags=re.MULTILINE)
    return {name: sql.strip() for name, sql in zip(blocks[1::2], blocks[2::2])}


# Blocks that named queries include by `{name}`; a dialect defines those its queries use.
_FRAGMENTS = ("run_metric_columns", "run_filter", "who_filter")
GROUPS = {"day", "team_id", "user_id", "model", "repo"}


def render(sql: dict[str, str], name: str, params: dict[str, Any]) -> str:
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
    runs_filtered = params.get("model") is not None or params.get("repo") is not None
    for table in ("activity", "sessions"):  # neither has a model or repo: see *_of_matching_runs
        text = text.replace(f"{{{table}}}", sql[f"{table}_of_matching_runs"] if runs_filtered else table)
    return text
