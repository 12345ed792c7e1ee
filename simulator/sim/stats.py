"""Streaming statistics for the simulator: memory stays flat however many jobs run.

Nothing here keeps per-job records.  Values arrive in batches (numpy arrays) and are folded
into fixed-size structures:

* :class:`LogHistogram` -- counts in log-spaced bins (HDR-histogram style), one row per group
  (urgency, queue, process, time bin...).  Quantiles are read back with a relative error of
  half a bin width (about 1.2 % with the default 100 bins per decade).
* :class:`Moments` -- count, mean, variance (Welford/Chan parallel update), min and max, per
  group.
"""

from __future__ import annotations

import math

import numpy as np

from .model import URGENCIES, SloTargets

__all__ = ["LogHistogram", "Moments", "confidence_interval", "student_t_quantile"]


class LogHistogram:
    """Grouped histogram with log-spaced bins between ``lo`` and ``hi`` seconds.

    Bin 0 holds values below ``lo`` (zero waits land there), the last bin values at or above
    ``hi``.  ``counts`` has shape ``(groups, nbins + 2)``.
    """

    def __init__(self, groups: int, *, lo: float = 1e-6, hi: float = 1e7,
                 per_decade: int = 100) -> None:
        if groups < 1:
            raise ValueError("a histogram needs at least one group")
        self.lo = lo
        self.hi = hi
        self.per_decade = per_decade
        self._log_lo = math.log10(lo)
        self.nbins = round((math.log10(hi) - self._log_lo) * per_decade)
        self.counts = np.zeros((groups, self.nbins + 2), dtype=np.int64)
        # edges[i] is the lower edge of bin i (bin 0 starts at 0).
        inner = lo * 10.0 ** (np.arange(self.nbins + 1) / per_decade)
        self.edges = np.concatenate(([0.0], inner))

    @property
    def groups(self) -> int:
        return self.counts.shape[0]

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = np.floor((np.log10(values) - self._log_lo) * self.per_decade) + 1
        idx = np.nan_to_num(idx, nan=0.0, neginf=0.0, posinf=self.nbins + 1)
        return np.clip(idx, 0, self.nbins + 1).astype(np.intp)

    def add(self, group: np.ndarray | int, values: np.ndarray) -> None:
        """Count ``values`` (seconds) into ``group`` (an index or an array of indices)."""
        if len(values) == 0:
            return
        width = self.nbins + 2
        idx = self.bin_index(values)
        flat = np.asarray(group, dtype=np.intp) * width + idx
        self.counts += np.bincount(
            np.broadcast_to(flat, idx.shape), minlength=self.counts.size
        ).reshape(self.counts.shape)

    def merge(self, other: LogHistogram) -> None:
        self.counts += other.counts

    def total(self, group: int | None = None) -> int:
        row = self.counts.sum(axis=0) if group is None else self.counts[group]
        return int(row.sum())

    def _row(self, group: int | None) -> np.ndarray:
        return self.counts.sum(axis=0) if group is None else self.counts[group]

    def quantile(self, q: float, group: int | None = None) -> float:
        """The ``q``-quantile (0..1) of a group (``None`` = all groups), NaN when empty."""
        return float(self.quantiles([q], group)[0])

    def quantiles(self, qs: list[float], group: int | None = None) -> np.ndarray:
        row = self._row(group)
        return self._quantiles_of_row(row, qs)

    def _quantiles_of_row(self, row: np.ndarray, qs: list[float]) -> np.ndarray:
        n = row.sum()
        out = np.full(len(qs), np.nan)
        if n == 0:
            return out
        cum = np.cumsum(row)
        for k, q in enumerate(qs):
            rank = q * n
            b = int(np.searchsorted(cum, rank, side="left"))
            b = min(b, len(row) - 1)
            if b == 0:
                out[k] = 0.0
                continue
            if b == len(row) - 1:
                out[k] = self.hi
                continue
            before = cum[b - 1]
            frac = (rank - before) / row[b] if row[b] else 0.5
            lo_e, hi_e = self.edges[b], self.edges[b + 1]
            out[k] = lo_e * (hi_e / lo_e) ** min(max(frac, 0.0), 1.0)
        return out

    def group_quantiles(self, qs: list[float]) -> np.ndarray:
        """Quantiles of every group: shape ``(groups, len(qs))``."""
        return np.array([self._quantiles_of_row(row, qs) for row in self.counts])

    def fraction_above(self, t: float, group: int | None = None) -> float:
        """Share of values above ``t`` (log-interpolated inside the bin holding ``t``)."""
        row = self._row(group)
        n = row.sum()
        if n == 0:
            return math.nan
        if t < self.lo:
            return float(row[1:].sum() / n)
        b = int(self.bin_index(np.array([t]))[0])
        above = row[b + 1:].sum()
        if 0 < b <= self.nbins:
            lo_e, hi_e = self.edges[b], self.edges[b + 1]
            inside = math.log(hi_e / t) / math.log(hi_e / lo_e)
            above += row[b] * inside
        return float(above / n)


class Moments:
    """Per-group count, mean, variance, min and max, updated batch by batch (Chan et al.)."""

    def __init__(self, groups: int) -> None:
        self.n = np.zeros(groups, dtype=np.int64)
        self.mean = np.zeros(groups)
        self.m2 = np.zeros(groups)
        self.min = np.full(groups, np.inf)
        self.max = np.full(groups, -np.inf)

    def add(self, group: np.ndarray, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        g = len(self.n)
        group = np.asarray(group, dtype=np.intp)
        nb = np.bincount(group, minlength=g)
        sb = np.bincount(group, weights=values, minlength=g)
        seen = nb > 0
        mb = np.zeros(g)
        mb[seen] = sb[seen] / nb[seen]
        m2b = np.bincount(group, weights=(values - mb[group]) ** 2, minlength=g)
        n_new = self.n + nb
        delta = mb - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(n_new > 0, nb / np.maximum(n_new, 1), 0.0)
        self.mean = self.mean + delta * frac
        self.m2 = self.m2 + m2b + delta**2 * self.n * frac
        self.n = n_new
        np.minimum.at(self.min, group, values)
        np.maximum.at(self.max, group, values)

    def variance(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 1, self.m2 / np.maximum(self.n - 1, 1), np.nan)

    def total(self) -> tuple[int, float, float]:
        """Pooled (count, mean, max) over all groups."""
        n = int(self.n.sum())
        if n == 0:
            return 0, math.nan, math.nan
        return n, float((self.mean * self.n).sum() / n), float(self.max.max())


def student_t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t (scipy when available, else a normal approximation)."""
    try:
        from scipy.stats import t as student_t
    except ImportError:  # pragma: no cover - scipy is a dev dependency
        from statistics import NormalDist

        z = NormalDist().inv_cdf(p)
        return z + (z**3 + z) / (4 * dof)
    return float(student_t.ppf(p, dof))


def confidence_interval(samples: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the ``level`` confidence interval over replications."""
    x = np.asarray([s for s in samples if not math.isnan(s)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan
    t = student_t_quantile(0.5 + level / 2, len(x) - 1)
    return mean, float(t * x.std(ddof=1) / math.sqrt(len(x)))


_URGENCY_COUNT = len(URGENCIES)


class FleetRecorder:
    """Everything a run reports, folded batch by batch into fixed-size arrays.

    Jobs arrive as tuples ``(class, queue, process, enqueued_at, started_at, finished_at,
    flags)`` where flags bit 0 = the fetcher was blocked and handed the job, bit 1 = the
    execution failed.  Memory depends on the fleet (queues, processes, time bins), never on
    the number of jobs.
    """

    def __init__(
        self,
        *,
        class_urgency: np.ndarray,
        n_queues: int,
        queue_shard: np.ndarray,
        n_shards: int,
        n_procs: int,
        proc_concurrency: np.ndarray,
        handoff_cost_us: np.ndarray,
        waiting_cost_us: np.ndarray,
        idle_cost_us: np.ndarray,
        fetch_timeout: float,
        duration: float,
        bin_width: float,
        targets: SloTargets,
        hold_s: float = 0.0,
    ) -> None:
        self.urgencies = URGENCIES
        u = len(URGENCIES)
        q = max(n_queues, 1)
        p = max(n_procs, 1)
        self.class_urgency = class_urgency
        self.queue_shard = queue_shard
        self.n_shards = n_shards
        self.proc_concurrency = proc_concurrency
        self.hand_cost = handoff_cost_us
        self.wait_cost = waiting_cost_us
        self.idle_cost = idle_cost_us
        self.fetch_timeout = fetch_timeout
        self.duration = duration
        self.bin_width = bin_width
        self.nbins = max(1, math.ceil(duration / bin_width))
        self.targets = targets
        #: A taken job's thread is busy this long before its execution (``started_at``)
        #: starts: the fetch round trip and dispatch (simulator.sim.overheads).
        self.hold_s = hold_s
        self.q_target = np.array([targets.queueing[x] for x in URGENCIES], dtype=float)
        self.e_target = np.array([targets.execution[x] for x in URGENCIES], dtype=float)

        self.wait_u, self.wait_q, self.wait_p = (LogHistogram(n) for n in (u, q, p))
        self.exec_u, self.exec_q, self.exec_p = (LogHistogram(n) for n in (u, q, p))
        self.wait_mom_u, self.wait_mom_q, self.wait_mom_p = (Moments(n) for n in (u, q, p))
        self.exec_mom_u, self.exec_mom_q, self.exec_mom_p = (Moments(n) for n in (u, q, p))
        self.ts_wait = LogHistogram(self.nbins * u, lo=1e-3, hi=1e6, per_decade=20)
        self.n_qu = np.zeros((q, u), dtype=np.int64)
        self.wok_qu = np.zeros((q, u), dtype=np.int64)
        self.wtol_qu = np.zeros((q, u), dtype=np.int64)
        self.eok_qu = np.zeros((q, u), dtype=np.int64)
        self.etol_qu = np.zeros((q, u), dtype=np.int64)
        self.n_pu = np.zeros((p, u), dtype=np.int64)
        self.wok_pu = np.zeros((p, u), dtype=np.int64)
        self.fail_q = np.zeros(q, dtype=np.int64)
        #: Per queue at the end: jobs still waiting in it (their waits so far are counted, a
        #: lower bound) and jobs running (started, so their waits are final).
        self.censored_q = np.zeros(q, dtype=np.int64)
        self.running_q = np.zeros(q, dtype=np.int64)
        self.done_bu = np.zeros((self.nbins, u), dtype=np.int64)
        # Per time bin (of the start) and urgency: jobs started, within the queueing target,
        # longest wait (jobs still waiting at the end count in the last bin, wait so far).
        self.n_bu = np.zeros((self.nbins, u), dtype=np.int64)
        self.wok_bu = np.zeros((self.nbins, u), dtype=np.int64)
        self.wmax_bu = np.zeros((self.nbins, u))
        self.busy = np.zeros((p, self.nbins))
        self.redis = np.zeros((max(n_shards, 1), self.nbins))
        self.backlog_t: list[float] = []
        self.backlog: list[np.ndarray] = []
        self.retry_backlog: list[int] = []
        self._censored: list[tuple[int, int, float, int]] = []

    # -- folding --------------------------------------------------------------------------
    def _bin(self, t: np.ndarray) -> np.ndarray:
        return np.clip((t / self.bin_width).astype(np.intp), 0, self.nbins - 1)

    def add_jobs(self, records: list[tuple]) -> None:
        a = np.array(records, dtype=np.float64)
        cls = a[:, 0].astype(np.intp)
        q = a[:, 1].astype(np.intp)
        p = a[:, 2].astype(np.intp)
        enq, start, end = a[:, 3], a[:, 4], a[:, 5]
        flags = a[:, 6].astype(np.intp)
        handed = (flags & 1).astype(bool)
        failed = (flags & 2) > 0
        wait = start - enq
        ex = end - start
        u = self.class_urgency[cls]
        nu = len(self.urgencies)
        for hist, mom, grp in ((self.wait_u, self.wait_mom_u, u), (self.wait_q, self.wait_mom_q, q),
                               (self.wait_p, self.wait_mom_p, p)):
            hist.add(grp, wait)
            mom.add(grp, wait)
        for hist, mom, grp in ((self.exec_u, self.exec_mom_u, u), (self.exec_q, self.exec_mom_q, q),
                               (self.exec_p, self.exec_mom_p, p)):
            hist.add(grp, ex)
            mom.add(grp, ex)
        qt = self.q_target[u]
        et = self.e_target[u]
        qu = q * nu + u
        size = self.n_qu.size
        self.n_qu += np.bincount(qu, minlength=size).reshape(self.n_qu.shape)
        for arr, ok in ((self.wok_qu, wait <= qt), (self.wtol_qu, wait <= 4 * qt),
                        (self.eok_qu, ex <= et), (self.etol_qu, ex <= 4 * et)):
            arr += np.bincount(qu, weights=ok, minlength=size).astype(np.int64).reshape(arr.shape)
        pu = p * nu + u
        psize = self.n_pu.size
        self.n_pu += np.bincount(pu, minlength=psize).reshape(self.n_pu.shape)
        self.wok_pu += np.bincount(pu, weights=wait <= qt, minlength=psize).astype(
            np.int64).reshape(self.n_pu.shape)
        self.fail_q += np.bincount(q, weights=failed, minlength=len(self.fail_q)).astype(np.int64)
        sb = self._bin(start)
        eb = self._bin(end)
        bu = sb * nu + u
        self.ts_wait.add(bu, wait)
        self._add_bins(bu, wait, wait <= qt)
        self.done_bu += np.bincount(eb * nu + u, minlength=self.done_bu.size).reshape(
            self.done_bu.shape)
        # The thread is busy from when it took the job: the fetch round trip, the dispatch and
        # any wait for its process's GVL come before the execution (simulator.sim.cpu).
        taken = a[:, 7]
        self._add_busy_vec(p, taken, end, self._bin(taken), eb)
        cost = np.where(handed, self.hand_cost[p, q], self.wait_cost[p, q])
        shard = self.queue_shard[q]
        self.redis += np.bincount(shard * self.nbins + sb, weights=cost,
                                  minlength=self.redis.size).reshape(self.redis.shape)

    def _add_bins(self, bu: np.ndarray, wait: np.ndarray, ok: np.ndarray) -> None:
        size = self.n_bu.size
        self.n_bu += np.bincount(bu, minlength=size).reshape(self.n_bu.shape)
        self.wok_bu += np.bincount(bu, weights=ok, minlength=size).astype(np.int64).reshape(
            self.n_bu.shape)
        np.maximum.at(self.wmax_bu.reshape(-1), bu, wait)

    def _add_busy_vec(self, p: np.ndarray, start: np.ndarray, end: np.ndarray,
                      sb: np.ndarray, eb: np.ndarray) -> None:
        same = sb == eb
        nb = self.nbins
        self.busy += np.bincount(p[same] * nb + sb[same], weights=(end - start)[same],
                                 minlength=self.busy.size).reshape(self.busy.shape)
        for i in np.flatnonzero(~same):
            self.add_busy(int(p[i]), float(start[i]), float(end[i]))

    def add_busy(self, p: int, start: float, end: float) -> None:
        """Busy thread time of one job between ``start`` and ``end`` (split over time bins)."""
        w = self.bin_width
        b0 = min(int(start / w), self.nbins - 1)
        b1 = min(int(end / w), self.nbins - 1)
        if b0 == b1:
            self.busy[p, b0] += end - start
            return
        self.busy[p, b0] += (b0 + 1) * w - start
        self.busy[p, b0 + 1:b1] += w
        self.busy[p, b1] += end - b1 * w

    def add_idle(self, log: list[tuple[int, float, float]]) -> None:
        """Idle fetchers between t0 and t1: one BRPOP timeout cycle every ``fetch_timeout``."""
        a = np.array(log, dtype=np.float64)
        p = a[:, 0].astype(np.intp)
        t0, t1 = a[:, 1], a[:, 2]
        cycles = np.floor((t1 - t0) / self.fetch_timeout)
        cost = cycles[:, None] * self.idle_cost[p]  # (n, shards)
        b0 = self._bin(t0)
        b1 = self._bin(t1)
        same = b0 == b1
        for s in range(self.n_shards):
            self.redis[s] += np.bincount(b1[same], weights=cost[same, s], minlength=self.nbins)
        w = self.bin_width
        for i in np.flatnonzero(~same):
            span = t1[i] - t0[i]
            for b in range(int(b0[i]), int(b1[i]) + 1):
                part = min(t1[i], (b + 1) * w) - max(t0[i], b * w)
                if part > 0:
                    self.redis[:, b] += cost[i] * (part / span)

    def add_censored_wait(self, cls: int, q: int, wait: float) -> None:
        """A job still waiting in a queue at the end: its wait so far, a lower bound."""
        self._censored.append((cls, q, wait, 0))

    def add_running_wait(self, cls: int, q: int, wait: float) -> None:
        """A job running at the end (not yet in the execution statistics): its wait."""
        self._censored.append((cls, q, wait, 1))

    def add_held_wait(self, cls: int, q: int, wait: float) -> None:
        """A job a producer still keeps at the end (its Redis is down, simulator.sim.
        redis_failover): its wait so far, a lower bound; not in the queue's counts."""
        self._censored.append((cls, q, wait, 2))

    def sample_backlog(self, now: float, lengths: list[int], retrying: int) -> None:
        self.backlog_t.append(now)
        self.backlog.append(np.asarray(lengths, dtype=np.int64))
        self.retry_backlog.append(retrying)

    def finish(self) -> None:
        if not self._censored:
            return
        a = np.array(self._censored, dtype=np.float64)
        self._censored.clear()
        cls = a[:, 0].astype(np.intp)
        q = a[:, 1].astype(np.intp)
        wait = a[:, 2]
        u = self.class_urgency[cls]
        nu = len(self.urgencies)
        self.wait_u.add(u, wait)
        self.wait_q.add(q, wait)
        self.wait_mom_u.add(u, wait)
        self.wait_mom_q.add(q, wait)
        qt = self.q_target[u]
        qu = q * nu + u
        size = self.n_qu.size
        self.n_qu += np.bincount(qu, minlength=size).reshape(self.n_qu.shape)
        self.wok_qu += np.bincount(qu, weights=wait <= qt, minlength=size).astype(
            np.int64).reshape(self.n_qu.shape)
        self.wtol_qu += np.bincount(qu, weights=wait <= 4 * qt, minlength=size).astype(
            np.int64).reshape(self.n_qu.shape)
        running = a[:, 3] == 1
        waiting = a[:, 3] == 0
        self.censored_q += np.bincount(q[waiting], minlength=len(self.censored_q))
        self.running_q += np.bincount(q[running], minlength=len(self.running_q))
        self._add_bins((self.nbins - 1) * nu + u, wait, wait <= qt)

    # -- reading --------------------------------------------------------------------------
    def backlog_matrix(self) -> np.ndarray:
        """Queue lengths sampled once per time bin: shape (samples, queues)."""
        if not self.backlog:
            return np.zeros((0, len(self.fail_q)), dtype=np.int64)
        return np.vstack(self.backlog)

    def utilisation(self) -> np.ndarray:
        """Busy share of each process's threads per time bin: shape (processes, bins)."""
        conc = np.maximum(self.proc_concurrency, 1)[:, None] if len(self.proc_concurrency) else 1
        widths = np.full(self.nbins, self.bin_width)
        widths[-1] = self.duration - self.bin_width * (self.nbins - 1)
        return self.busy / (conc * np.maximum(widths, 1e-9))

    def redis_cpu_share(self) -> np.ndarray:
        """Redis CPU share (0..1 of one core) per shard per time bin."""
        widths = np.full(self.nbins, self.bin_width)
        widths[-1] = self.duration - self.bin_width * (self.nbins - 1)
        return self.redis * 1e-6 / np.maximum(widths, 1e-9)
