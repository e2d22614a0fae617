"""Exact duplicate rows of a whole day, dropped by DuckDB in bounded memory.

Every good row has a 128-bit digest of its exported values (two uint64 halves). ``StagedRows``
takes a resource's good rows batch by batch in file order and stages them in a Parquet file of the
work folder (with their JSON leaves in a second one). Once the whole day is read, one DuckDB query
groups the digests and keeps each digest's first row (``min`` of the row's place in the file);
DuckDB holds that aggregate within ``MEMORY_LIMIT`` and spills the rest to the work folder itself.
``batches`` then streams the staged rows back in file order, the duplicates left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MEMORY_LIMIT = "384MB"
READ_ROWS = 64 * 1024  # leaves read back at a time
_DIGEST = ("_digest_hi", "_digest_lo")
_LEAVES = pa.schema([("seq", pa.int64()), ("path", pa.string()), ("value_text", pa.string()),
                     ("value_type", pa.string())])  # fmt: skip


class StagedRows:
    """One resource's good rows of the day, staged in file order and read back without duplicates."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.rows_path = workdir / f"{name}.rows.parquet"
        self.leaves_path = workdir / f"{name}.leaves.parquet"
        self._rows: pq.ParquetWriter | None = None
        self._leaves: pq.ParquetWriter | None = None
        self.staged = 0
        self.duplicates = 0

    def add(self, table: pa.Table, hi: np.ndarray, lo: np.ndarray, leaves: pa.Table | None) -> None:
        """Stage good rows (file order) with their digests and their leaves (``row`` indexes ``table``)."""
        if not table.num_rows:
            return
        table = table.append_column(_DIGEST[0], pa.array(hi, pa.uint64())).append_column(
            _DIGEST[1], pa.array(lo, pa.uint64())
        )
        if self._rows is None:
            self._rows = pq.ParquetWriter(self.rows_path, table.schema, compression="lz4")
        self._rows.write_table(table, row_group_size=table.num_rows)  # read back batch for batch
        if leaves is not None and leaves.num_rows:
            seq = pa.array(np.asarray(leaves.column("row"), dtype=np.int64) + self.staged, pa.int64())
            staged = pa.table([seq, *leaves.drop_columns(["row"]).columns], schema=_LEAVES)
            if self._leaves is None:
                self._leaves = pq.ParquetWriter(self.leaves_path, _LEAVES, compression="lz4")
            self._leaves.write_table(staged, row_group_size=READ_ROWS)
        self.staged += table.num_rows

    def _first_rows(self) -> np.ndarray:
        """Per staged row: is it the first of its digest in file order?"""
        import duckdb

        keep = np.zeros(self.staged, dtype=bool)
        con = duckdb.connect()
        try:
            con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
            con.execute("set preserve_insertion_order = false")
            con.execute("set temp_directory = ?", [str(self.workdir / "spill")])
            reader = con.execute(
                "select min(file_row_number) as seq from read_parquet(?, file_row_number = true) "
                "group by _digest_hi, _digest_lo",
                [str(self.rows_path)],
            ).to_arrow_reader(1 << 20)
            for batch in reader:
                keep[np.asarray(batch.column(0), dtype=np.int64)] = True
        finally:
            con.close()
        return keep

    def batches(self) -> Iterator[tuple[pa.Table, pa.Table | None]]:
        """The staged rows in file order, each digest's first row only, in the batches they were staged in, with
        their leaves (``row``, ``path``, ``value_text``, ``value_type``; ``row`` indexes the batch). Sets
        ``duplicates``."""
        for writer in (self._rows, self._leaves):
            if writer is not None:
                writer.close()
        if self._rows is None:
            return
        keep = self._first_rows()
        self.duplicates = int(self.staged - keep.sum())
        rows = pq.ParquetFile(self.rows_path)
        columns = [n for n in rows.schema_arrow.names if n not in _DIGEST]
        leaves = _Leaves(self.leaves_path if self._leaves is not None else None)
        start = 0
        for group in range(rows.num_row_groups):
            table = rows.read_row_group(group, columns=columns, use_threads=False)
            end = start + table.num_rows
            mask = keep[start:end]
            if not mask.all():
                table = table.filter(pa.array(mask))
            yield table, leaves.upto(end, start, mask)
            start = end


class _Leaves:
    """The staged leaves read in ``seq`` order, handed out per batch of rows."""

    def __init__(self, path: Path | None) -> None:
        self._batches = (
            iter(pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS, use_threads=False)) if path else iter(())
        )
        self._pending: pa.Table | None = None

    def upto(self, end: int, start: int, mask: np.ndarray) -> pa.Table:
        """Leaves of rows ``start`` to ``end`` (exclusive), of the rows ``mask`` keeps, renumbered to them."""
        parts = []
        while True:
            if self._pending is None:
                nxt = next(self._batches, None)
                if nxt is None:
                    break
                self._pending = pa.Table.from_batches([nxt])
            seq = np.asarray(self._pending.column("seq"), dtype=np.int64)
            cut = int(np.searchsorted(seq, end))
            parts.append(self._pending.slice(0, cut))
            if cut < len(seq):
                self._pending = self._pending.slice(cut)
                break
            self._pending = None
        table = pa.concat_tables(parts) if parts else _LEAVES.empty_table()
        local = np.asarray(table.column("seq"), dtype=np.int64) - start
        new_index = np.cumsum(mask, dtype=np.int64) - 1
        kept = mask[local]
        rows = pa.array(new_index[local][kept], pa.int64())
        return pa.table([rows, *table.drop_columns(["seq"]).filter(pa.array(kept)).columns],
                        names=["row", "path", "value_text", "value_type"])  # fmt: skip
