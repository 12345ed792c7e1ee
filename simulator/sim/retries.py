"""Retries: a failed job waits ``count**4 + 15 + rand(10 * (count + 1))`` seconds (Sidekiq 8) in
the retry set, at most ``max_retries`` times, then it is dead; the scheduled-set poller (about
every ``poll_interval_s``) pushes due retries back to their queue."""

from __future__ import annotations

import heapq

from simpy.events import Timeout

from .jobs import Job
from .model import retry_delay
from .state import ModelState


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
        if not self._poller_active:
            self._poller_active = True
            self._schedule_poll()

    def _schedule_poll(self) -> None:
        interval = self.sc.poll_interval_s
        # Sidekiq's random_poll_interval: interval * rand + interval / 2.
        ev = Timeout(self.env, interval * self.poll_rnd.random() + interval / 2)
        ev.callbacks.append(self._on_poll)

    def _on_poll(self, _ev: object) -> None:
        now = self.env.now
        heap = self.retry_heap
        while heap and heap[0][0] <= now:
            _, _, job = heapq.heappop(heap)
            c = self.classes[job.cls]
            job.service = float(c.service.sample(self.retry_rng, 1)[0])
            job.fails = self.retry_rnd.random() < c.failure_probability
            job.enqueued = now
            job.retries += 1
            self._push(job.queue, job, now)
        if heap:
            self._schedule_poll()
        else:
            self._poller_active = False
