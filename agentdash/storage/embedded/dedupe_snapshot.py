"""The dedupe index saved beside the log at a clean close, so a start reads one file instead of the whole log.

Rebuilding the index means reading every (dedupe_key, seq) of the log: ~19 s at 14M events. The snapshot holds
them as two sorted arrays with the log position they cover; a start loads it and reads only the entries after that
position. Archiving and restoring move entries between `events` and `archived_ids` under the same key and seq, so
they never change what a snapshot holds. A snapshot that does not match the log (another log's, a log restored
from an older backup) is ignored and the index is rebuilt: a key missing from the index would let a duplicate in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    keys: np.ndarray  # int64, sorted
    seqs: np.ndarray  # int64, the seq of each key
    last_seq: int  # every log entry up to this one is in it


def save(path: Path, keys: np.ndarray, seqs: np.ndarray, last_seq: int, key_at: Callable[[int], int | None]) -> None:
    """Write the snapshot atomically (a temp file, fsynced, renamed); `key_at(seq)` gives the probes load checks."""
    probes = _probe_seqs(last_seq)
    found = [key_at(seq) for seq in probes]
    if any(key is None for key in found):
        return  # the log lacks an entry it should hold: nothing worth saving
    header = np.array([FORMAT, last_seq, *probes, *found], dtype=np.int64)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        np.savez(out, header=header, keys=keys, seqs=seqs)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)


def load(path: Path, key_at: Callable[[int], int | None], last_seq: int) -> Snapshot | None:
    """The snapshot, or None when there is none or it does not belong to this log (whose end is `last_seq`)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as saved:
            header, keys, seqs = saved["header"], saved["keys"], saved["seqs"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.warning("dedupe snapshot %s unreadable (%s): rebuilding the index from the log", path, exc)
        return None
    if len(header) < 2 or header[0] != FORMAT:
        return None
    covered = int(header[1])
    probes = _probe_seqs(covered)
    expected = [int(key) for key in header[2 + len(probes) :]]
    # The index searches the keys as loaded: out of order, some would not be found, and their duplicates get in.
    if len(keys) > 1 and not np.all(keys[1:] >= keys[:-1]):
        log.warning("dedupe snapshot %s has its keys out of order: rebuilding the index from the log", path)
        return None
    if covered > last_seq or len(keys) != len(seqs) or [key_at(seq) for seq in probes] != expected:
        log.warning("dedupe snapshot %s is not this log's (covers seq %d): rebuilding the index from the log",
                    path, covered)  # fmt: skip
        return None
    return Snapshot(keys=keys, seqs=seqs, last_seq=covered)


def _probe_seqs(last_seq: int) -> list[int]:
    """A few entries whose keys tell this log from another: the first, the middle and the last covered."""
    return sorted({1, (last_seq + 1) // 2, last_seq}) if last_seq > 0 else []
