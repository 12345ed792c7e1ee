"""The CPU model: one GVL per Sidekiq process, and the host's cores shared by its processes.

A job's execution of ``service`` seconds (what it takes with a core to itself) has a CPU part,
``cpu_share * service``, that runs Ruby, and a waiting part (database, Gitaly, HTTP, Redis)
that needs no core.  The CPU part comes first (one burst; docs/simulator.md says why that is
enough), then the wait.

* **GVL** (one per process): only one thread of a Ruby VM runs Ruby at a time.  The threads in
  their CPU part share the process's core equally: processor sharing.  Ruby hands the GVL over
  whenever a thread waits and otherwise every 100 ms; a job's Ruby time is many short bursts
  between its waits, so over the seconds the service targets care about each runnable thread
  gets an equal share -- round robin with a 100 ms (or shorter) quantum, whose limit is
  processor sharing.
* **Cores** (per node, ``Scenario.node_cpus``): a process whose GVL is busy needs one core.  When
  more processes are busy than the node has cores, the kernel shares the cores fairly: each
  busy process gets ``cores / busy`` of one.  A node missing from ``node_cpus`` never limits.

A CPU part that finds its GVL free (on a node that never limits) is planned as if alone: one
event for the whole job, as without the CPU model.  Only when another thread wants the GVL
before that part is over does it join the shared GVL, with what it has left.

Processor sharing without an event per change: each process keeps a virtual clock ``g_v``, the
CPU time every thread in its CPU part has received so far; a thread entering with ``cpu``
seconds to do finishes when the clock reaches ``g_v + cpu`` (a heap per process).  The clock
runs at ``rate / n`` (``n`` threads in their CPU part, ``rate`` the process's share of a core),
so only the earliest finish needs a wake-up.  When work arrives or the node's other processes
take cores, that wake-up is later than planned: it fires, finds nothing finished, and plans
again (so a slow-down costs no new event); a speed-up plans an earlier one and the old one
goes stale.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush

from .kernel import NORMAL, Tick
from .state import ModelState


class Cpu(ModelState):
    def _gvl_enter(self, p: int, fid: int, cpu: float, wait: float, now: float) -> bool:
        """Thread ``fid`` of process ``p`` starts a CPU part of ``cpu`` seconds, then waits
        ``wait``.  False: the GVL was free (and the node never limits), so the job runs alone
        for now and the caller schedules its end as if there were no GVL; if another thread
        wants the GVL before its CPU part is over, it joins the shared GVL then."""
        n = self.g_n[p]
        self.f_wait[fid] = wait
        solo = self.g_solo[p]
        if solo >= 0:
            end = self.g_solo_end[p]
            if end <= now:  # the lone CPU part is over: the GVL is free
                self.g_solo[p] = -1
                n = self.g_n[p] = 0
            else:  # it is not: from now on it shares the GVL (its planned end goes stale)
                self.g_solo[p] = -1
                self.f_ev[solo] = Tick(solo)
                self.g_busy[p] -= end - now  # counted in advance; the clock counts it now
                self.g_v[p] = 0.0
                self.g_t[p] = now
                self.g_heap[p].append((end - now, solo))
        if not n and self.p_host[p] < 0:
            self.g_solo[p] = fid
            self.g_solo_end[p] = now + cpu
            self.g_busy[p] += cpu
            self.g_n[p] = 1
            return False
        if n:
            dt = now - self.g_t[p]
            if dt:
                r = self.g_rate[p]
                self.g_v[p] += dt * r / n
                self.g_busy[p] += dt * r
        else:  # the GVL was free: the clock restarts, and the process takes a core
            self.g_v[p] = 0.0
            h = self.p_host[p]
            if h >= 0:
                self._host_change(h, 1, now)
                self.g_rate[p] = self.h_rate[h]
        self.g_t[p] = now
        heappush(self.g_heap[p], (self.g_v[p] + cpu, fid))
        self.g_n[p] = n + 1
        self._gvl_plan(p, now)
        return True

    def _gvl_plan(self, p: int, now: float) -> None:
        """Wake-up for the earliest CPU part of ``p`` to finish (clock current at ``now``)."""
        heap = self.g_heap[p]
        if not heap:
            return
        due = now + (heap[0][0] - self.g_v[p]) * self.g_n[p] / self.g_rate[p]
        if due < self.g_due[p]:
            ev = Tick(p)
            ev.callbacks = self._gvl_cbs
            self.g_ev[p] = ev  # an earlier pending wake-up goes stale
            self.g_due[p] = due
            self.at(due, ev)
        # else the pending wake-up comes first and plans again (a slow-down, noticed lazily)

    def _on_gvl(self, ev: Tick) -> None:
        p = ev.fid
        if ev is not self.g_ev[p]:
            return  # stale
        now = ev.due
        self.g_due[p] = math.inf
        n = self.g_n[p]
        r = self.g_rate[p]
        dt = now - self.g_t[p]
        v = self.g_v[p] + dt * r / n
        self.g_busy[p] += dt * r
        self.g_v[p] = v
        self.g_t[p] = now
        heap = self.g_heap[p]
        # Rounding: a part due within a few ulps of the clock counts as finished.
        lim = v + 1e-12 * (1.0 + v) + 1e-12 * (1.0 + now) * r / n
        done = []
        while heap and heap[0][0] <= lim:
            done.append(heappop(heap)[1])
        if done:
            n -= len(done)
            self.g_n[p] = n
            if not n:
                h = self.p_host[p]
                if h >= 0:
                    self._host_change(h, -1, now)
        if n:
            due = now + (heap[0][0] - v) * n / self.g_rate[p]
            ev.callbacks = self._gvl_cbs
            self.g_due[p] = ev.due = due
            heappush(self._evq, (due, NORMAL, next(self._eid), ev))
        for fid in done:  # the state is consistent: their next steps may start new work
            wait = self.f_wait[fid]
            if wait > 0:
                tick = self.f_ev[fid]
                tick.callbacks = self._done_cbs
                t = tick.due = now + wait
                heappush(self._evq, (t, NORMAL, next(self._eid), tick))
            else:
                self._complete(fid, now)

    def _host_change(self, h: int, delta: int, now: float) -> None:
        """A process of node ``h`` starts (``delta`` 1) or stops (-1) using a core."""
        a = self.h_active[h] + delta
        self.h_active[h] = a
        cores = self.h_cores[h]
        rate = 1.0 if a <= cores else cores / a
        if rate == self.h_rate[h]:
            return
        self.h_rate[h] = rate
        for q in self.h_procs[h]:
            n = self.g_n[q]
            if n:
                r = self.g_rate[q]
                dt = now - self.g_t[q]
                self.g_v[q] += dt * r / n
                self.g_busy[q] += dt * r
                self.g_t[q] = now
                self.g_rate[q] = rate
                self._gvl_plan(q, now)

    def _gvl_clear(self, p: int, now: float) -> None:
        """Process ``p`` stops: the CPU parts of its jobs end with it (the jobs are lost or
        pushed back by the caller)."""
        if self.g_solo[p] >= 0:
            self.g_busy[p] -= max(0.0, self.g_solo_end[p] - now)
            self.g_solo[p] = -1
            self.g_n[p] = 0
            return
        n = self.g_n[p]
        if not n:
            return
        self.g_busy[p] += (now - self.g_t[p]) * self.g_rate[p]
        self.g_t[p] = now
        self.g_heap[p].clear()
        self.g_n[p] = 0
        self.g_ev[p] = Tick(p)  # the pending wake-up goes stale
        self.g_due[p] = math.inf
        h = self.p_host[p]
        if h >= 0:
            self._host_change(h, -1, now)

    def _gvl_settle(self, now: float) -> None:
        """At the end: core time used up to ``now``."""
        for p, n in enumerate(self.g_n):
            if self.g_solo[p] >= 0:
                self.g_busy[p] -= max(0.0, self.g_solo_end[p] - now)
            elif n:
                self.g_busy[p] += (now - self.g_t[p]) * self.g_rate[p]
                self.g_t[p] = now
