"""A streaming quantile sketch for seconds: log-spaced bins with a count and a sum each.

The bins are the simulator's own (:class:`~simulator.sim.stats.LogHistogram`'s defaults: 100
per decade from 1 microsecond, one bin below that for zeros), so an observed quantile and a
simulated one are read off the same grid: a quantile is within one bin, about 2.3 %, of the
exact value.  Each bin also keeps the sum of its values, which makes the mean exact and lets
:meth:`LogSketch.bin_means` cut the distribution into equal-probability slices whose means
average to the exact mean (an empirical service time that keeps the observed load).

Memory is bounded by the range of bins (at most 1,302: 16 bytes each) and a buffer of
:data:`BATCH` values, whatever the number of values: adding a value appends it to the buffer,
which numpy bins :data:`BATCH` at a time.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

import numpy as np

__all__ = ["LogSketch"]

_LO = 1e-6
_PER_DECADE = 100
_LOG_LO = math.log10(_LO)
_HI_BIN = round((7 - _LOG_LO) * _PER_DECADE) + 1  # values at or above 1e7 s
#: Values buffered before they are binned (8 bytes each).
BATCH = 512


class LogSketch:
    """Counts and sums of non-negative values in log-spaced bins (bin 0: below 1 us).

    The bins are two numpy arrays (counts, sums) over the range of bins seen so far, 16 bytes a
    bin: at most about 21 KiB a sketch, however many values it has taken.
    """

    __slots__ = ("_buf", "_c", "_lo", "_max", "_n", "_s", "_total")

    def __init__(self) -> None:
        self._lo = 0  # bin number of _c[0]
        self._c = np.zeros(0, dtype=np.int64)
        self._s = np.zeros(0, dtype=np.float64)
        self._n = 0
        self._total = 0.0
        self._max = 0.0
        self._buf = array("d")

    def _cover(self, lo: int, hi: int) -> None:
        """Widen the arrays to hold bins lo..hi."""
        size = len(self._c)
        if size and lo >= self._lo and hi < self._lo + size:
            return
        new_lo = min(lo, self._lo) if size else lo
        new_hi = max(hi, self._lo + size - 1) if size else hi
        c = np.zeros(new_hi - new_lo + 1, dtype=np.int64)
        sums = np.zeros(new_hi - new_lo + 1, dtype=np.float64)
        if size:
            c[self._lo - new_lo:self._lo - new_lo + size] = self._c
            sums[self._lo - new_lo:self._lo - new_lo + size] = self._s
        self._lo, self._c, self._s = new_lo, c, sums

    def _flush(self) -> None:
        buf = self._buf
        if not buf:
            return
        v = np.frombuffer(buf, dtype=np.float64).copy()
        del buf[:]
        idx = np.floor((np.log10(np.maximum(v, _LO)) - _LOG_LO) * _PER_DECADE).astype(np.int64)
        idx = np.minimum(idx + 1, _HI_BIN)
        idx[v < _LO] = 0
        self._cover(int(idx.min()), int(idx.max()))
        offset = idx - self._lo
        size = len(self._c)
        self._c += np.bincount(offset, minlength=size)
        self._s += np.bincount(offset, weights=v, minlength=size)
        self._n += len(v)
        self._total += float(v.sum())
        self._max = max(self._max, float(v.max()))

    @property
    def counts(self) -> dict[int, int]:
        """Bin -> number of values (occupied bins only)."""
        self._flush()
        return {self._lo + i: int(c) for i, c in enumerate(self._c.tolist()) if c}

    @property
    def sums(self) -> dict[int, float]:
        """Bin -> sum of its values (occupied bins only)."""
        self._flush()
        return {self._lo + i: float(self._s[i]) for i, c in enumerate(self._c.tolist()) if c}

    @property
    def bins(self) -> int:
        """Bins held in memory (the occupied range)."""
        self._flush()
        return len(self._c)

    @property
    def n(self) -> int:
        self._flush()
        return self._n

    @property
    def total(self) -> float:
        self._flush()
        return self._total

    @property
    def max(self) -> float:
        self._flush()
        return self._max

    @staticmethod
    def bin_of(value: float) -> int:
        if value < _LO:
            return 0
        return min(int((math.log10(value) - _LOG_LO) * _PER_DECADE) + 1, _HI_BIN)

    @staticmethod
    def edges(b: int) -> tuple[float, float]:
        """Lower and upper edge of bin ``b`` (bin 0 is [0, 1 us))."""
        if b == 0:
            return 0.0, _LO
        return (_LO * 10.0 ** ((b - 1) / _PER_DECADE), _LO * 10.0 ** (b / _PER_DECADE))

    def add(self, value: float) -> None:
        """Count one value (callers pass finite values >= 0)."""
        buf = self._buf
        buf.append(value)
        if len(buf) >= BATCH:
            self._flush()

    def merge(self, other: LogSketch) -> None:
        self._flush()
        other._flush()
        if not other._n:
            return
        self._cover(other._lo, other._lo + len(other._c) - 1)
        at = other._lo - self._lo
        self._c[at:at + len(other._c)] += other._c
        self._s[at:at + len(other._s)] += other._s
        self._n += other._n
        self._total += other._total
        self._max = max(self._max, other._max)

    @classmethod
    def merged(cls, sketches: Iterable[LogSketch]) -> LogSketch:
        out = cls()
        for s in sketches:
            out.merge(s)
        return out

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1), interpolated geometrically inside its bin; None if empty."""
        if not self.n:
            return None
        rank = min(max(q, 0.0), 1.0) * self.n
        seen = 0
        counts = self.counts
        for b in sorted(counts):
            c = counts[b]
            if seen + c >= rank:
                lo, hi = self.edges(b)
                if b == 0:
                    return 0.0
                frac = (rank - seen) / c
                return min(lo * (hi / lo) ** frac, self.max)
            seen += c
        return self.max

    def bin_means(self, k: int) -> list[float]:
        """``k`` equal-probability slices of the distribution (lowest first), each its mean.

        A bin that straddles two slices gives each the share of its count that falls in it, at
        the bin's mean value; so the slices' mean is the exact mean of every value added.
        """
        if not self.n:
            return []
        k = max(1, min(k, self.n))
        per = self.n / k
        out: list[float] = []
        eps = per * 1e-9
        mass = 0.0  # value mass in the current slice
        room = per  # count still missing from the current slice
        counts, sums = self.counts, self.sums
        for b in sorted(counts):
            left = float(counts[b])
            mean_b = sums[b] / counts[b]
            while left > eps:
                take = min(left, room)
                mass += take * mean_b
                left -= take
                room -= take
                if room <= eps:
                    out.append(mass / per)
                    mass, room = 0.0, per
        if len(out) < k:  # rounding left the last slice a hair short
            out.append(mass / (per - room) if per > room else (out[-1] if out else 0.0))
        return out[:k]
