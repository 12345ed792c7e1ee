"""Arrivals: Poisson per job class in numpy batches (hourly rates), and trace replay.

Each arrival is routed -- during a rolling switch, a share of the producers uses the new
routes -- and pushed to its queue (:mod:`simulator.sim.fetchers`).  The next arrival of a
batch is the reusable :class:`~simulator.sim.kernel.Tick` ``_arr_ev``, put back onto the event
queue after each one.
"""

from __future__ import annotations

import csv
import math
from heapq import heappush
from typing import cast

import numpy as np
from simpy.events import Timeout

from .jobs import Job
from .kernel import NORMAL, Tick
from .state import ModelState

#: Inter-arrival times drawn at once.
ARRIVAL_BATCH = 8192


class Arrivals(ModelState):
    def _period(self, now: float) -> tuple[np.ndarray, float]:
        """Rates in force at ``now`` and when they next change."""
        if not self.has_shape:
            return self.rates, math.inf
        hour_pos = now / 3600.0 + self.sc.start_hour
        h = math.floor(hour_pos + 1e-9)
        boundary = (h + 1 - self.sc.start_hour) * 3600.0
        return self.rates * self.shapes[:, h % 24], boundary

    def _refill(self, now: float) -> None:
        rates, boundary = self._period(now)
        self._a_boundary = boundary
        lam = float(rates.sum())
        self._a_i = 0
        if lam <= 0:
            self._a_t = []
            self._a_n = 0
            self._schedule_refill(boundary)
            return
        n = ARRIVAL_BATCH
        rng = self.rng
        t = now + np.cumsum(rng.exponential(1.0 / lam, n))
        keep = int(np.searchsorted(t, boundary, side="left"))
        cum = np.cumsum(rates / lam)
        cum[-1] = 1.0
        cls = np.searchsorted(cum, rng.random(n), side="right")
        cls = np.minimum(cls, len(rates) - 1)
        # Service times and failures from streams of their own, one batch per arrival batch.
        svc = np.empty(n)
        dist = self.cls_dist[cls]
        for d, st in enumerate(self.dists):
            mask = dist == d
            m = int(mask.sum())
            if m:
                svc[mask] = st.sample(self.svc_rng, m)
        fail = self.fail_rng.random(n) < self.cls_fail[cls]
        self._a_t = t[:keep].tolist()
        self._a_cls = cls[:keep].tolist()
        self._a_svc = svc[:keep].tolist()
        self._a_fail = fail[:keep].tolist()
        self._a_full = keep == n
        self._a_n = keep
        if keep == 0:
            self._schedule_refill(boundary)
        else:
            ev = self._arr_ev
            ev.callbacks = self._arr_cbs
            self.at(self._a_t[0] + self._a_shift, ev)

    def _schedule_refill(self, at: float) -> None:
        if at >= self.duration or math.isinf(at):
            return
        # A boundary can fall between a batch's last push and the moment it fired (_a_shift).
        ev = Timeout(self.env, max(0.0, at - self.env.now))
        ev.callbacks.append(lambda _ev: self._refill(at))

    def _on_arrival(self, ev: Tick) -> None:
        """Arrival ``i`` of the batch: the producer pushed at ``_a_t[i]``; this fires then, or
        ``_a_shift`` (enqueue_visible_s) later when the run folds the push's transit into the
        arrival (:meth:`_fold_transit`)."""
        i = self._a_i
        now = ev.due
        pushed = self._a_t[i]
        cls = self._a_cls[i]
        q = self.route_table[cls]
        if self._mix is not None:  # a rolling switch: this arrival's producer decides
            q = self._mixed(cls, q)
        self.arrived += 1
        if self._visible and not self._a_shift:
            self._enqueue(q, Job(cls, q, now, 0, self._a_svc[i], self._a_fail[i]), now)
        else:
            self._push(q, Job(cls, q, pushed, 0, self._a_svc[i], self._a_fail[i]), now)
        i += 1
        self._a_i = i
        if i < self._a_n:
            ev.callbacks = self._arr_cbs
            t = ev.due = self._a_t[i] + self._a_shift
            heappush(self._evq, (t, NORMAL, next(self._eid), ev))
        elif self._a_full:
            self._refill(pushed)
        else:
            self._schedule_refill(self._a_boundary)

    def _fold_transit(self) -> bool:
        """Whether arrivals fire when their push becomes visible and push at once: one event
        per arrival instead of two (the arrival, then the transit's), the same times and
        order.  Not when something at the push's own instant depends on it: a routing change
        (which producer pushed) or a Redis failover (a push refused while Redis is down)."""
        return bool(self._visible) and not any(
            e.action in ("routing", "redis_failover") for e in self.sc.events)

    def _pushed_not_visible(self, end: float) -> None:
        """At the end of a folded run: the arrivals pushed before ``end`` whose visibility (and
        so their event) falls after it are arrived and in transit, as the unfolded run counts
        them -- including those of batches the unfolded run drew before the end (its refill
        came with the last push of a batch or at an hour's boundary; the folded run's only
        with that push's visibility)."""
        if not self._a_shift:
            return
        while True:
            for i in range(self._a_i, self._a_n):
                pushed = self._a_t[i]
                if pushed >= end:
                    return
                cls = self._a_cls[i]
                q = self.route_table[cls]
                job = Job(cls, q, pushed, 0, self._a_svc[i], self._a_fail[i])
                if q < 0:
                    q = job.queue = self._unrouted(job)
                self.arrived += 1
                self._transit.append((pushed + self._a_shift, q, job))
            self._a_i = self._a_n
            if self._a_full:
                base = self._a_t[-1]
            elif self._a_boundary < end:
                base = self._a_boundary
            else:
                return
            self._refill(base)  # the same draws; its event falls after the end and never fires

    def _mixed(self, cls: int, q: int) -> int:
        """During a rolling switch: the new route for a ``share`` of the arrivals."""
        if self._mix is not None and self._mix_rnd.random() < self._share:
            return self._mix[cls]
        return q

    # -- trace replay -----------------------------------------------------------------------
    def _start_trace(self) -> None:
        if self.sc.trace is None:
            return
        self._trace_file = open(self.sc.trace.path, newline="")  # noqa: SIM115 - closed in run
        reader = csv.DictReader(self._trace_file)
        self._trace_rows = iter(reader)
        self._next_trace(0.0)

    def _next_trace(self, now: float) -> None:
        for row in self._trace_rows:
            t = float(row["time"])
            if t >= self.duration:
                return
            cls = self.class_index[row["worker_class"].strip()]
            svc = float(row["duration"])
            ev = Timeout(self.env, max(0.0, t - now), (cls, svc))
            ev.callbacks.append(self._on_trace)
            return

    def _on_trace(self, ev: Timeout) -> None:
        cls, svc = cast(tuple[int, float], ev.value)
        now = self.env.now
        fail = self.trace_rnd.random() < self.classes[cls].failure_probability
        q = self.route_table[cls]
        if self._mix is not None:
            q = self._mixed(cls, q)
        self.arrived += 1
        self._enqueue(q, Job(cls, q, now, 0, svc, fail), now)
        self._next_trace(now)
