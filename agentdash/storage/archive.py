"""The archive of old log entries, shared by both backends: monthly Parquet parts, their checksums, the manifest.

Layout: `<dir>/events-YYYY-MM-pNNN.parquet` (the month of the entries' arrival, `received_us`, UTC; a new part per
archive run that finds entries of that month, an existing part is never rewritten) and `<dir>/manifest.json`, the
list of verified parts (month, part, file, rows, seq range, checksum). Columns: `seq`, `received_us`, then the
`Event`'s fields in declaration order (ARCHIVE_COLUMNS), the same on both backends, so an archive is lossless and
restores to either. A part is written to a temporary name, fsynced, renamed, read back and checked (rows, seq range,
checksum) and only then listed in the manifest; the backend deletes its rows from the live log after that.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agentdash.events import Event
from agentdash.storage.base import ArchivedPart, ArchiveError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
DAY_US = 86_400 * 1_000_000
BATCH_ROWS = 50_000  # rows per Parquet row group, per read-back batch and per delete transaction

_INTS = {"seq", "received_us", "occurred_us", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_tokens", "pr_number", "lines_added", "lines_removed", "commits"}  # fmt: skip
ARCHIVE_COLUMNS: tuple[str, ...] = ("seq", "received_us", *Event.__struct_fields__)
SCHEMA = pa.schema(
    [(name, pa.int64() if name in _INTS else pa.float64() if name == "cost_usd" else pa.string())
     for name in ARCHIVE_COLUMNS]
)  # fmt: skip
_PART_FILE = re.compile(r"events-(\d{4}-\d{2})-p(\d{3,})\.parquet")


class ArchiveManifest(msgspec.Struct):
    version: int = MANIFEST_VERSION
    parts: list[ArchivedPart] = []


def cutoff_us(retention_days: float, now_us: int | None = None) -> int:
    """Entries received before this instant are past retention."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    return now - round(retention_days * DAY_US)


def month_of(received_us: int) -> str:
    return datetime.fromtimestamp(received_us / 1e6, UTC).strftime("%Y-%m")


def month_range(month: str) -> tuple[int, int]:
    """[start, end) of a YYYY-MM month in µs."""
    year, number = int(month[:4]), int(month[5:7])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return _us(start), _us(end)


def months_between(first_us: int, last_us: int) -> list[str]:
    """Every month from the one holding first_us to the one holding last_us."""
    months, month = [], month_of(first_us)
    while month <= month_of(last_us):
        months.append(month)
        month = month_of(month_range(month)[1])
    return months


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


class Checksum:
    """SHA-256 of a table's values, column by column: the same whatever its batching, chunking or file layout
    (defined over values, not over Arrow's or Parquet's bytes, so another pyarrow version verifies it alike)."""

    def __init__(self) -> None:
        # Per column: its null mask, its values' lengths (strings), its values; each fed in row order, so that any
        # split into batches gives the same digests.
        self._columns = [(hashlib.sha256(), hashlib.sha256(), hashlib.sha256()) for _ in ARCHIVE_COLUMNS]
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        table = table.combine_chunks()
        self.rows += table.num_rows
        for (nulls, lengths, values), name in zip(self._columns, ARCHIVE_COLUMNS, strict=True):
            column = table[name]
            array = column.chunk(0) if column.num_chunks else pa.array([], column.type)
            nulls.update(np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=np.uint8).tobytes())
            if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                filled = pc.fill_null(array, "").cast(pa.large_string())
                offsets = np.frombuffer(filled.buffers()[1], dtype="<i8")[
                    filled.offset : filled.offset + len(filled) + 1
                ]
                data = filled.buffers()[2]
                lengths.update(np.diff(offsets).astype("<i8").tobytes())
                if data is not None and len(offsets):
                    values.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
            else:
                kind = "<f8" if pa.types.is_floating(array.type) else "<i8"
                values.update(pc.fill_null(array, 0).to_numpy(zero_copy_only=False).astype(kind).tobytes())

    def hexdigest(self) -> str:
        total = hashlib.sha256(str(self.rows).encode())
        for name, digests in zip(ARCHIVE_COLUMNS, self._columns, strict=True):
            total.update(name.encode() + b"\0" + b"".join(d.digest() for d in digests))
        return total.hexdigest()


def stopping(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def until_stopped(batches: Iterable[pa.RecordBatch], stop: threading.Event | None) -> Iterator[pa.RecordBatch]:
    """`batches` up to the one in hand when `stop` is set: a shorter part is as valid, the rest waits for a later run
    (the caller then moves what the part holds, and nothing else)."""
    for batch in batches:
        yield batch
        if stopping(stop):
            return


def rows_batch(rows: list[tuple]) -> pa.RecordBatch:
    """Rows of (seq, received_us, *Event fields) as a batch of the archive's schema."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(ARCHIVE_COLUMNS)
    return pa.RecordBatch.from_arrays(
        [pa.array(values, type=field.type) for field, values in zip(SCHEMA, columns, strict=True)], schema=SCHEMA
    )


def read_manifest(directory: Path) -> ArchiveManifest:
    path = directory / MANIFEST_NAME
    if not path.exists():
        return ArchiveManifest()
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=ArchiveManifest)
    except msgspec.DecodeError as exc:
        raise ArchiveError(f"{path} is not an archive manifest: {exc}") from None
    if manifest.version != MANIFEST_VERSION:
        raise ArchiveError(f"{path}: archive manifest version {manifest.version}, this agentdash reads "
                           f"{MANIFEST_VERSION}")  # fmt: skip
    return manifest


def write_part(directory: Path, month: str, batches: Iterable[pa.RecordBatch]) -> ArchivedPart | None:
    """Write one new part of `month` from `batches`, verify it read back, list it in the manifest; None when
    `batches` hold no rows (nothing written). Raises ArchiveError when the read-back differs."""
    directory.mkdir(parents=True, exist_ok=True)
    part = _next_part(directory, month)
    name = f"events-{month}-p{part:03d}.parquet"
    final, temporary = directory / name, directory / f".{name}.tmp"
    written = Checksum()
    first_seq = last_seq = None
    with pq.ParquetWriter(temporary, SCHEMA, compression="zstd") as writer:
        for batch in batches:
            if not batch.num_rows:
                continue
            writer.write_batch(batch, row_group_size=BATCH_ROWS)
            written.update(batch)
            seqs = batch["seq"]
            low, high = pc.min(seqs).as_py(), pc.max(seqs).as_py()
            first_seq = low if first_seq is None else min(first_seq, low)
            last_seq = high if last_seq is None else max(last_seq, high)
    if first_seq is None or last_seq is None:
        temporary.unlink()
        return None
    _fsync(temporary)
    temporary.rename(final)
    _fsync(directory)
    found = verify_file(final)
    if (found.rows, found.hexdigest()) != (written.rows, written.hexdigest()):
        raise ArchiveError(f"{final} does not read back as written ({found.rows} rows, {written.rows} written): "
                           "nothing of it was deleted from the live log")  # fmt: skip
    entry = ArchivedPart(month, part, name, written.rows, first_seq, last_seq, written.hexdigest(),
                         datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
    manifest = read_manifest(directory)
    manifest.parts.append(entry)
    _write_atomically(directory / MANIFEST_NAME, msgspec.json.format(msgspec.json.encode(manifest), indent=2))
    return entry


def verify_file(path: Path) -> Checksum:
    """Read a part back whole: its checksum (and row count)."""
    found = Checksum()
    for batch in _batches(path):
        found.update(batch)
    return found


def verified_parts(directory: Path) -> Iterator[tuple[ArchivedPart, Callable[[], Iterator[pa.RecordBatch]]]]:
    """Every part of the manifest, each checked against it (rows, checksum) before it is yielded with a way to read
    its batches. Raises ArchiveError naming the first missing or corrupted file; check them all before restoring."""
    if not (directory / MANIFEST_NAME).exists():
        raise ArchiveError(f"{directory} holds no {MANIFEST_NAME}: not an agentdash archive")
    for part in read_manifest(directory).parts:
        path = directory / part.file
        if not path.exists():
            raise ArchiveError(f"{path} is listed in {directory / MANIFEST_NAME} but missing")
        try:
            found = verify_file(path)
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveError(f"{path} is corrupted (unreadable: {exc}); nothing was restored") from None
        if found.rows != part.rows or found.hexdigest() != part.sha256:
            raise ArchiveError(f"{path} is corrupted: {found.rows} rows with checksum {found.hexdigest()[:12]}…, the "
                               f"manifest says {part.rows} with {part.sha256[:12]}…; nothing was restored")  # fmt: skip
        yield part, functools.partial(_batches, path)


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    file = pq.ParquetFile(path)
    if file.schema_arrow.names != list(ARCHIVE_COLUMNS):
        raise ArchiveError(f"{path} has columns {file.schema_arrow.names}, not the archive's")
    yield from file.iter_batches(batch_size=BATCH_ROWS)


def events_of(batch: pa.RecordBatch) -> Iterator[tuple[int, int, Event]]:
    """(seq, received_us, Event) of each row of an archived batch."""
    columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    for seq, received_us, *fields in zip(*columns, strict=True):
        yield seq, received_us, Event(*fields)


def _next_part(directory: Path, month: str) -> int:
    taken = [int(m.group(2)) for path in directory.iterdir() if (m := _PART_FILE.fullmatch(path.name.lstrip(".")
             .removesuffix(".tmp"))) and m.group(1) == month]  # fmt: skip
    return max(taken, default=0) + 1


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)
