"""Exact duplicate detection over a whole day of rows, in bounded memory.

Every row has a 128-bit digest of its exported values (two uint64 halves). ``Deduplicator``
answers, batch by batch in file order, which rows repeat a digest seen earlier in the day:

- within a batch, by sorting its digests;
- against earlier batches, first through a Bloom filter (10 bits per expected row, so about 1 %
  of new rows are "maybe seen"), then exactly for those few candidates by binary search in the
  sorted runs of every digest kept so far. The newest digests stay in one sorted array in
  memory; every ``RUN_ROWS`` of them it is written to a file in ``workdir`` and searched there
  through a memory map.

Memory is the Bloom filter (1.25 bytes per expected row: 12.5 MB at 10M rows) plus one run of
``RUN_ROWS`` digests (32 MB), whatever the number of rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RUN_ROWS = 2_000_000
BITS_PER_ROW = 10
HASHES = 7
_MIN_BITS = 1 << 20


class Deduplicator:
    """Answers "was this digest seen before?" for a stream of batches (see the module docstring)."""

    def __init__(self, workdir: Path, expected_rows: int) -> None:
        self.workdir = workdir
        bits = max(_MIN_BITS, int(expected_rows) * BITS_PER_ROW)
        self._bits = 1 << (bits - 1).bit_length()  # a power of two: positions are masks
        self._filter = np.zeros(self._bits // 64, dtype=np.uint64)
        self._mem_hi = np.empty(0, dtype=np.uint64)
        self._mem_lo = np.empty(0, dtype=np.uint64)
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._seen = 0

    def _positions(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        mask = np.uint64(self._bits - 1)
        steps = np.arange(HASHES, dtype=np.uint64)[:, None]
        with np.errstate(over="ignore"):
            return (hi[None, :] + steps * (lo[None, :] | np.uint64(1))) & mask

    def _maybe_seen(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        pos = self._positions(hi, lo)
        words = self._filter[(pos >> np.uint64(6)).astype(np.int64)]
        hit = (words >> (pos & np.uint64(63))) & np.uint64(1)
        return hit.all(axis=0).astype(bool)

    def _add(self, hi: np.ndarray, lo: np.ndarray) -> None:
        pos = self._positions(hi, lo).ravel()
        np.bitwise_or.at(self._filter, (pos >> np.uint64(6)).astype(np.int64), np.uint64(1) << (pos & np.uint64(63)))
        order = np.argsort(hi, kind="stable")  # values sharing an insertion point must go in sorted
        hi, lo = hi[order], lo[order]
        where = np.searchsorted(self._mem_hi, hi)
        self._mem_hi = np.insert(self._mem_hi, where, hi)
        self._mem_lo = np.insert(self._mem_lo, where, lo)
        self._seen += len(hi)
        if len(self._mem_hi) >= RUN_ROWS:
            self._spill()

    def _spill(self) -> None:
        n = len(self._runs)
        arrays = []
        for name, values in (("hi", self._mem_hi), ("lo", self._mem_lo)):
            path = self.workdir / f"digests-{n:05d}.{name}.npy"
            np.save(path, values)
            arrays.append(np.load(path, mmap_mode="r"))
        self._runs.append((arrays[0], arrays[1]))
        self._mem_hi = np.empty(0, dtype=np.uint64)
        self._mem_lo = np.empty(0, dtype=np.uint64)

    def _in_runs(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hi), dtype=bool)
        for run_hi, run_lo in [(self._mem_hi, self._mem_lo), *self._runs]:
            left = np.searchsorted(run_hi, hi, "left")
            right = np.searchsorted(run_hi, hi, "right")
            for i in np.flatnonzero(right > left):
                if not found[i] and (np.asarray(run_lo[left[i] : right[i]]) == lo[i]).any():
                    found[i] = True
        return found

    def first_seen(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Mark, for a batch in file order, the rows whose digest was not seen before (and remember them)."""
        hi = np.ascontiguousarray(hi, dtype=np.uint64)
        lo = np.ascontiguousarray(lo, dtype=np.uint64)
        keep = np.zeros(len(hi), dtype=bool)
        if not len(hi):
            return keep
        # first occurrence of each digest inside the batch
        order = np.lexsort((np.arange(len(hi)), lo, hi))
        sh, sl = hi[order], lo[order]
        first_in_batch = np.ones(len(hi), dtype=bool)
        first_in_batch[1:] = (sh[1:] != sh[:-1]) | (sl[1:] != sl[:-1])
        candidates = np.sort(order[first_in_batch])
        # against earlier batches: the Bloom filter rules most rows out, the runs decide the rest
        maybe = self._maybe_seen(hi[candidates], lo[candidates])
        seen = np.zeros(len(candidates), dtype=bool)
        if maybe.any():
            idx = np.flatnonzero(maybe)
            seen[idx] = self._in_runs(hi[candidates[idx]], lo[candidates[idx]])
        new = candidates[~seen]
        keep[new] = True
        self._add(hi[new], lo[new])
        return keep
