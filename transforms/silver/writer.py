"""Parquet writing for silver and quarantine partitions, with bounded files and row groups."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.settings import ConfigError


@dataclass(frozen=True)
class WriterLimits:
    """Bounds on the Parquet files of one partition.

    Defaults suit Parquet readers (DuckDB, pyarrow, Spark): row groups of ~128k rows so
    statistics and pruning work per group, and files of at most 1M rows or 256 MiB of
    in-memory Arrow data (the file on disk is smaller: zstd compressed), so a day of tens of
    millions of events becomes tens of files rather than one huge file or thousands of tiny ones.
    """

    max_rows_per_file: int = 1_000_000
    max_bytes_per_file: int = 256 * 1024 * 1024
    row_group_rows: int = 128 * 1024

    @classmethod
    def from_env(cls) -> WriterLimits:
        """Read overrides from ``LAKEHOUSE_SILVER_{MAX_ROWS_PER_FILE,MAX_BYTES_PER_FILE,ROW_GROUP_ROWS}``."""
        values = {}
        for field, env in (
            ("max_rows_per_file", "LAKEHOUSE_SILVER_MAX_ROWS_PER_FILE"),
            ("max_bytes_per_file", "LAKEHOUSE_SILVER_MAX_BYTES_PER_FILE"),
            ("row_group_rows", "LAKEHOUSE_SILVER_ROW_GROUP_ROWS"),
        ):
            raw = os.environ.get(env)
            if raw is None:
                continue
            if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                raise ConfigError(f"{env} must be a positive integer, got {raw!r}")
            values[field] = int(raw)
        limits = cls(**values)
        if limits.row_group_rows > limits.max_rows_per_file:
            raise ConfigError("LAKEHOUSE_SILVER_ROW_GROUP_ROWS must not exceed LAKEHOUSE_SILVER_MAX_ROWS_PER_FILE")
        return limits


class PartitionWriter:
    """Write one table's partition as ``part-00000.parquet``, ``part-00001.parquet``, ...

    Rows are written in the order given; file and row-group boundaries depend only on the rows,
    so the same input gives byte-identical files. At least one file is always written (possibly
    empty) so readers always find the table's schema.
    """

    def __init__(self, folder: Path, schema: pa.Schema, limits: WriterLimits, compression: str = "zstd") -> None:
        self.folder = folder
        self.compression = compression
        self.schema = schema
        self.limits = limits
        self.files: list[str] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._file_bytes = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def _open(self) -> pq.ParquetWriter:
        name = f"part-{len(self.files):05d}.parquet"
        self.files.append(name)
        self._file_rows = self._file_bytes = 0
        return pq.ParquetWriter(
            self.folder / name,
            self.schema,
            compression=self.compression,
            write_statistics=True,
            use_dictionary=True,
        )

    def write(self, table: pa.Table) -> None:
        """Queue ``table`` (cast to the schema) for writing."""
        if table.num_rows == 0:
            return
        self._pending.append(table.select(self.schema.names).cast(self.schema))
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.limits.row_group_rows:
            self._flush(self.limits.row_group_rows)

    def _flush(self, rows: int) -> None:
        combined = pa.concat_tables(self._pending)
        group, rest = combined.slice(0, rows), combined.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        if self._writer is not None and (
            self._file_rows + group.num_rows > self.limits.max_rows_per_file
            or self._file_bytes + group.nbytes > self.limits.max_bytes_per_file
        ):
            self._writer.close()
            self._writer = None
        if self._writer is None:
            self._writer = self._open()
        self._writer.write_table(group, row_group_size=self.limits.row_group_rows)
        self._file_rows += group.num_rows
        self._file_bytes += group.nbytes
        self.rows += group.num_rows

    def close(self) -> dict[str, object]:
        """Write what is pending and close; return the file names and row count."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        if self._writer is None and not self.files:
            self._writer = self._open()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return {"files": list(self.files), "rows": self.rows}
