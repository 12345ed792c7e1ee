"""Sampling: backlog per time bin, stranded jobs over time, and the statistics at the end."""

from __future__ import annotations

from simpy.events import Timeout

from .state import ModelState


class Sampling(ModelState):
    def _sample_stranded(self, now: float) -> None:
        """Jobs waiting in queues no up process listens to (and of those, the ones in queues
        no process of the current configuration listens to at all)."""
        stranded = unlistened = 0
        up, cfg, queues = self.up_listeners, self.cfg_listeners, self.queues
        for q in self.nonempty:
            if not up[q]:
                n = len(queues[q])
                stranded += n
                if not cfg[q]:
                    unlistened += n
        self.stranded_log.append((now, stranded, unlistened))

    def _stranded_sampler(self, _ev: object) -> None:
        now = self.env.now
        self._sample_stranded(now)
        nxt = now + (self.sc.stranded_sample_s or 0.0)
        if nxt < self.duration:
            ev = Timeout(self.env, nxt - now)
            ev.callbacks.append(self._stranded_sampler)

    def _sample(self, _ev: object) -> None:
        now = self.env.now
        self.rec.sample_backlog(now, [len(d) for d in self.queues], len(self.retry_heap))
        if self.sc.stranded_sample_s is None:
            self._sample_stranded(now)
        nxt = now + self.rec.bin_width
        if nxt <= self.duration:
            ev = Timeout(self.env, nxt - now)
            ev.callbacks.append(self._sample)

    def _flush(self) -> None:
        if self.records:
            self.rec.add_jobs(self.records)
            self.records.clear()
        if self.idle_log:
            self.rec.add_idle(self.idle_log)
            self.idle_log.clear()

    def _finish(self) -> None:
        """At the end: idle and busy time so far, and the waits of jobs not yet started."""
        now = self.duration
        self._gvl_settle(now)
        for p in range(len(self.procs)):
            for fid in self.idle[p]:
                t0 = self.f_idle_since[fid]
                if now - t0 >= self.sc.fetch_timeout_s:
                    self.idle_log.append((p, t0, now))
            waiting = self._gvl_waiting(p)
            for fid in self.p_fetchers[p]:
                job = self.f_job[fid]
                if job is not None:
                    self.rec.add_busy(p, self.f_taken[fid], now)
                    if fid in waiting:  # taken, not started: it waits for the GVL still
                        self.rec.add_censored_wait(job.cls, job.queue, now - job.enqueued)
                    else:  # started: its wait is final
                        self.rec.add_running_wait(job.cls, job.queue,
                                                  self.f_start[fid] - job.enqueued)
        self._flush()
        for d in self.queues:
            for job in d:
                self.rec.add_censored_wait(job.cls, job.queue, now - job.enqueued)
        for _, q, job in self._transit:  # pushed, not poppable yet: waiting too
            self.rec.add_censored_wait(job.cls, q, now - job.enqueued)
        self.rec.finish()
