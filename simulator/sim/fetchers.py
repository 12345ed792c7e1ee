"""Queues and fetchers: every Sidekiq thread loops on ``BRPOP q1 q2 ... timeout``.

A push hands the job straight to the fetcher that has been blocked longest on that queue, or
appends it to the queue (a Redis list).  A fetcher that finishes a job pops from the first
non-empty queue in strict order, or in a weighted shuffle (weighted sampling without
replacement: P(first = q) = w_q / sum w); with nothing waiting it blocks.  A completion is
the fetcher's own reusable :class:`~simulator.sim.kernel.Tick`; a job with a CPU part first
goes through its process's GVL (:mod:`simulator.sim.cpu`).

Overheads (:mod:`simulator.sim.overheads`): a producer's or the poller's push reaches the queue
``enqueue_visible_s`` later (:meth:`Fetchers._enqueue`: one reusable event for every job in
transit, which arrive in push order; a new arrival's own event fires that much later instead,
unless a routing change or a Redis failover makes the push's instant matter:
:meth:`~simulator.sim.arrivals.Arrivals._fold_transit`); a thread that takes a job holds it
``fetch_round_trip_s + dispatch_s`` (``_hold``) before the execution starts. The hold is planned
with the job's waiting part -- the completion is one event at ``taken + hold + service`` -- so
it costs no event; with a CPU part, the part enters the GVL when the job is taken (up to
``_hold`` early, a millisecond or two against Ruby's 100 ms time slice). With zero overheads
every time is the same float as without them.
"""

from __future__ import annotations

import math
from heapq import heappush

from .jobs import QUIET, Job
from .kernel import NORMAL, Tick
from .state import ModelState

#: Execution records kept before they are folded into the statistics.
FLUSH_EVERY = 32768


class Fetchers(ModelState):
    def _push(self, q: int, job: Job, now: float, front: bool = False) -> None:
        """LPUSH (or the RPUSH of a requeue, ``front``): hand to the longest-blocked fetcher."""
        if q < 0:
            q = job.queue = self._unrouted(job)
        best = -1
        lst = self.listeners[q]
        if len(lst) == 1:
            d = self.idle[lst[0]]
            if d:
                best = d.popleft()
        elif lst:
            since = math.inf
            bp = -1
            for p in lst:
                d = self.idle[p]
                if d and self.f_idle_since[d[0]] < since:
                    since = self.f_idle_since[d[0]]
                    bp = p
            if bp >= 0:
                best = self.idle[bp].popleft()
        if best >= 0:
            t0 = self.f_idle_since[best]
            if now - t0 >= self.sc.fetch_timeout_s:
                self.idle_log.append((self.f_proc[best], t0, now))
            self._start(best, job, now, 1)
        else:
            if front:
                self.queues[q].appendleft(job)
            else:
                self.queues[q].append(job)
            self.nonempty.add(q)

    def _enqueue(self, q: int, job: Job, now: float) -> None:
        """A new push (arrival, replay, due retry): poppable ``enqueue_visible_s`` later."""
        visible = self._visible
        if not visible:
            self._push(q, job, now)
            return
        transit = self._transit
        transit.append((now + visible, q, job))
        if len(transit) == 1:
            ev = self._transit_ev
            ev.callbacks = self._transit_cbs
            t = ev.due = now + visible
            heappush(self._evq, (t, NORMAL, next(self._eid), ev))

    def _on_visible(self, ev: Tick) -> None:
        """The oldest pushes in transit reach their queues (the same delay for all: FIFO)."""
        now = ev.due
        transit = self._transit
        while transit and transit[0][0] <= now:
            _, q, job = transit.popleft()
            self._push(q, job, now)
        if transit:
            ev.callbacks = self._transit_cbs
            self.at(transit[0][0], ev)

    def _unrouted(self, job: Job) -> int:
        """A class with no queue index (cannot happen with complete routes): its own name."""
        key = self.classes[job.cls].key
        qi = self.queue_index.get(key)
        if qi is None:
            raise ValueError(f"worker class {key!r} has no queue")
        return qi

    def _start(self, fid: int, job: Job, now: float, handed: int) -> None:
        self.running += 1
        p = self.f_proc[fid]
        self.p_busy[p] += 1
        self.f_job[fid] = job
        hold = self._hold  # fetch round trip + dispatch: the execution starts then
        self.f_taken[fid] = now
        self.f_start[fid] = now + hold
        self.f_handed[fid] = handed
        share = self.cls_cpu[job.cls]
        extra = self._dispatch_cpu
        if share or extra:  # the CPU part first, on the process's GVL (simulator.sim.cpu)
            own = job.service * share
            cpu = own + extra
            if cpu > 0 and self._gvl_enter(p, fid, cpu, job.service - own + hold, now):
                return
        ev = self.f_ev[fid]
        ev.callbacks = self._done_cbs
        t = ev.due = now + hold + job.service + extra
        heappush(self._evq, (t, NORMAL, next(self._eid), ev))

    def _on_done(self, ev: Tick) -> None:
        fid = ev.fid
        if ev is not self.f_ev[fid]:
            return  # the job was pushed back or lost meanwhile
        self._complete(fid, ev.due)

    def _complete(self, fid: int, now: float) -> None:
        """Thread ``fid``'s job ends now; the thread fetches its next one."""
        job = self.f_job[fid]
        assert job is not None
        p = self.f_proc[fid]
        fail = job.fails
        self.records.append((job.cls, job.queue, p, job.enqueued, self.f_start[fid], now,
                             self.f_handed[fid] + 2 * fail, self.f_taken[fid]))
        if len(self.records) >= FLUSH_EVERY:
            self._flush()
        self.running -= 1
        self.p_busy[p] -= 1
        self.f_job[fid] = None
        if fail:
            self._failed(job, now)
        else:
            self.succeeded += 1
        self._fetch(fid, now)

    def _fetch(self, fid: int, now: float) -> None:
        p = self.f_proc[fid]
        if self.p_state[p]:  # not up
            if self.p_state[p] == QUIET and self.p_busy[p] == 0:
                self._restart_done(p, now)
            return
        if self.nonempty:
            chosen = -1
            pos = self.p_pos[p]
            weights = self.p_weight[p]
            if weights is None:
                best = math.inf
                for q in self.nonempty:
                    i = pos.get(q)
                    if i is not None and i < best:
                        best = i
                        chosen = q
            else:
                cands = [q for q in self.nonempty if q in weights]
                if len(cands) == 1:
                    chosen = cands[0]
                elif cands:
                    cands.sort(key=pos.__getitem__)
                    total = sum(weights[q] for q in cands)
                    r = self.fetch_rnd.random() * total
                    for q in cands:
                        r -= weights[q]
                        chosen = q
                        if r < 0:
                            break
            if chosen >= 0:
                d = self.queues[chosen]
                job = d.popleft()
                if not d:
                    self.nonempty.discard(chosen)
                self._start(fid, job, now, 0)
                return
        self.f_idle_since[fid] = now
        self.idle[p].append(fid)
