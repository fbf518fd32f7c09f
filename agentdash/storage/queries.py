"""Named SQL: `-- name: x` blocks in storage/sql/<dialect>.sql, loaded once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources


@cache
def load_queries(dialect: str) -> dict[str, str]:
    text = resources.files("agentdash.storage").joinpath(f"sql/{dialect}.sql").read_text()
    blocks = re.split(r"^-- name: (\w+)\s*$", text, flags=re.MULTILINE)
    return {name: sql.strip() for name, sql in zip(blocks[1::2], blocks[2::2])}
