"""Retries and the scheduled-set pollers.

A failed job waits ``count**4 + 15 + rand(10 * (count + 1))`` seconds (Sidekiq 8) in the retry
set, at most ``max_retries`` times, then it is dead.  Every running (not quiet, not stopped)
Sidekiq process has a poller that pushes due retries back to their queue.  Sidekiq does not
coordinate the pollers: it scales each one's sleep by the number of processes registered in
Redis (``count``; a quiet process still counts until it stops), so the cluster as a whole polls
about every ``average_scheduled_poll_interval`` (``Scenario.poll_interval_s``, 5 s):

* ``interval = count * average_scheduled_poll_interval``;
* fewer than 10 processes: each sleeps ``interval * rand + interval / 2`` (uniform, mean
  ``interval``);
* 10 or more: ``interval * rand * F`` with ``F = Scenario.poll_large_cluster_factor``: 1 in
  Sidekiq 6.4-8.0.9 (so such a cluster polls about every half interval), 2 from 8.0.10;
* a process that starts sleeps ``10 + 5 * rand`` seconds before its first poll.

Sidekiq 7 computes ``count`` before every sleep (so does the model); 6.4 kept the first value.
The fleet at time 0 has been running for a while: each poller's first wake-up is drawn from
the steady state of its sleeps (a length-biased sleep, and a uniform point within it).
Pollers run only when some job can fail (otherwise the retry set stays empty).
"""

from __future__ import annotations

import heapq
import math
from typing import cast

from simpy.events import Timeout

from .jobs import UP, Job
from .model import retry_delay
from .state import ModelState

#: Sidekiq's ``INITIAL_WAIT``: a starting process's poller sleeps this plus ``5 * rand`` first.
POLL_INITIAL_WAIT_S = 10.0
#: From this many registered processes on, Sidekiq drops the +50 % floor of the sleep.
POLL_LARGE_CLUSTER = 10


class Retries(ModelState):
    def _failed(self, job: Job, now: float) -> None:
        self.failed_runs += 1
        count = job.retries
        if count >= self.sc.max_retries:
            self.dead += 1
            return
        self.retried += 1
        due = now + retry_delay(count, self.retry_rnd)
        self._retry_seq += 1
        heapq.heappush(self.retry_heap, (due, self._retry_seq, job))

    # -- pollers --------------------------------------------------------------------------
    def _poll_bounds(self) -> tuple[float, float]:
        """The uniform range of one poller's next sleep, for the processes registered now."""
        count = max(self._registered, 1)
        interval = count * self.sc.poll_interval_s
        if count < POLL_LARGE_CLUSTER:
            return interval / 2, interval * 1.5
        return 0.0, interval * self.sc.poll_large_cluster_factor

    def _start_pollers(self) -> None:
        """At time 0: the up processes' pollers, each at a steady-state point of its cycle."""
        if not self._polling:
            return
        lo, hi = self._poll_bounds()
        rnd = self.poll_rnd
        for p, state in enumerate(self.p_state):
            if state == UP:
                # A sleep in progress is length-biased (density ~ x on [lo, hi]); the time
                # left of it is a uniform share.
                length = math.sqrt(lo * lo + rnd.random() * (hi * hi - lo * lo))
                self._schedule_poll(p, rnd.random() * length)

    def _poller_started(self, p: int) -> None:
        """Process ``p`` came up: its poller's initial wait, then polls."""
        if self._polling:
            self._schedule_poll(p, POLL_INITIAL_WAIT_S + 5.0 * self.poll_rnd.random())

    def _schedule_poll(self, p: int, delay: float) -> None:
        ev = Timeout(self.env, delay, (p, self.p_restart_gen[p]))
        ev.callbacks.append(self._on_poll)

    def _on_poll(self, ev: Timeout) -> None:
        p, gen = cast(tuple[int, int], ev.value)
        if self.p_restart_gen[p] != gen or self.p_state[p] != UP:
            return  # quiet or stopped since: Sidekiq terminates the poller
        now = self.env.now
        self.polls += 1
        heap = self.retry_heap
        while heap and heap[0][0] <= now:
            _, _, job = heapq.heappop(heap)
            c = self.classes[job.cls]
            job.service = float(c.service.sample(self.retry_rng, 1)[0])
            job.fails = self.retry_rnd.random() < c.failure_probability
            job.enqueued = now
            job.retries += 1
            self._enqueue(job.queue, job, now)
        lo, hi = self._poll_bounds()
        self._schedule_poll(p, lo + (hi - lo) * self.poll_rnd.random())

