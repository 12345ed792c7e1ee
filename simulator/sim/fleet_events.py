"""Fleet events and the life of a Sidekiq process.

Events: node down / up, graceful restart (quiet, wait ``timeout``, push back the rest), a
routing change for a share of the producers (a rolling switch), ``listen`` (a node's processes
restart gracefully with new queue lists), ``move_jobs`` (waiting jobs move off queues
nothing routes to any more, as ``sidekiq_migrate_jobs`` does) and ``redis_failover`` (its
mechanics in :mod:`simulator.sim.redis_failover`).  A process is
:data:`~simulator.sim.jobs.UP`, :data:`~simulator.sim.jobs.QUIET` or
:data:`~simulator.sim.jobs.DOWN`; ``p_restart_gen`` makes a pending come-back stale when the
process changed state meanwhile.
"""

from __future__ import annotations

from typing import cast

from simpy.events import Timeout

from .jobs import DOWN, QUIET, UP, ProcState
from .kernel import Tick
from .model import FleetEvent
from .state import ModelState


class FleetEvents(ModelState):
    def _schedule_events(self) -> None:
        for event in sorted(self.sc.events, key=lambda e: e.at):
            if event.at >= self.duration:
                continue
            if event.node is not None and event.node not in self.nodes:
                raise ValueError(f"event names unknown node {event.node!r}")
            if event.action == "listen" and event.node is None:
                raise ValueError("a listen event needs a node")
            if event.action == "redis_failover":
                self._failover_scheduled(event)
            ev = Timeout(self.env, event.at, event)
            ev.callbacks.append(self._on_event)

    def _on_event(self, ev: Timeout) -> None:
        event = cast(FleetEvent, ev.value)
        now = self.env.now
        procs = self.node_procs.get(event.node or "", [])
        if event.action == "node_down":
            for p in procs:
                self._down(p, now, lose=True)
        elif event.action == "node_up":
            for p in procs:
                self._up(p, now)
        elif event.action == "restart":
            for p in procs:
                self._quiet(p, now, event.timeout_s, event.boot_s)
        elif event.action == "routing" and event.routes is not None:
            self._switch(event)
        elif event.action == "listen":
            self._listen(event, now)
        elif event.action == "move_jobs":
            self._move_jobs(event, now)
        elif event.action == "redis_failover":
            self._failover_begin(event, now)
        text = f"{now:.0f}s {event.action} {event.node or ''}".strip()
        if event.action == "routing" and event.share < 1.0:
            text += f" (share {event.share:.3g})"
        if event.action == "redis_failover":
            text += (f" {event.shard or 'default'} ({event.downtime_s:g} s down, last "
                     f"{event.lose_last_s:g} s of writes lost, producers "
                     f"{'retry' if event.producer_retry else 'do not retry'})")
        self.events_applied.append(text)
        self.event_log.append((now, event.action, event.label))
        self._sample_stranded(now)

    # -- routing --------------------------------------------------------------------------
    def _switch(self, event: FleetEvent) -> None:
        table = self._tables[id(event.routes)]
        known = self._known[id(event.routes)]
        if event.share >= 1.0:
            self.route_table, self.route_known, self._mix = table, known, None
        elif event.share <= 0.0:
            self._mix = None
        else:
            self._mix, self._mix_known, self._share = table, known, event.share

    def _listen(self, event: FleetEvent, now: float) -> None:
        """The node's processes restart gracefully as ``event.processes`` (new slots)."""
        node = event.node or ""
        old = self.node_procs.get(node, [])
        new = self._event_slots[id(event)]
        self.node_procs[node] = list(new)
        for p in old:
            for qi in self.p_pos[p]:
                self.cfg_listeners[qi] -= 1
        for p in new:
            for qi in self.p_pos[p]:
                self.cfg_listeners[qi] += 1
        for i, p in enumerate(old):
            self.p_successors[p] = [new[i]] if i < len(new) else []
        for s in new[len(old):]:  # more processes than before: they just start
            self._boot[s] = event.boot_s
            self._schedule_up(s, now + event.boot_s)
        for p in old:
            if self.p_state[p] == UP:
                self._quiet(p, now, event.timeout_s, event.boot_s)
            # quiet or restarting: the pending come-back brings the successors up; down
            # (node_down): they come up with the next node_up.

    def _move_jobs(self, event: FleetEvent, now: float) -> None:
        """Move waiting jobs off queues that are no destination (``sidekiq_migrate_jobs``)."""
        if event.routes is not None:
            table, known = self._tables[id(event.routes)], self._known[id(event.routes)]
            tables = [(table, known)]
        elif self._mix is not None:  # mid-switch: both route sets are in force
            table, known = self._mix, self._mix_known
            tables = [(self.route_table, self.route_known), (table, known)]
        else:
            table, known = self.route_table, self.route_known
            tables = [(table, known)]
        dests = {t[c] for t, k in tables for c in range(len(t)) if k[c] and t[c] >= 0}
        for q in sorted(self.nonempty):
            if q in dests:
                continue
            d = self.queues[q]
            jobs = list(d)  # oldest first
            d.clear()
            self.nonempty.discard(q)
            for job in jobs:
                dest = table[job.cls]
                if known[job.cls] and dest >= 0 and dest != q:
                    self.moved += 1
                    job.queue = dest
                    self._push(dest, job, now)
                else:  # a class the mapping does not name: it stays, never dropped
                    self.kept_unknown += 1
                    d.append(job)
            if d:
                self.nonempty.add(q)
        for _, _, job in self.retry_heap:  # the heap's keys do not change: still a heap
            q = job.queue
            dest = table[job.cls]
            if q not in dests and known[job.cls] and dest >= 0 and dest != q:
                job.queue = dest
                self.moved_retries += 1

    # -- a process's life -----------------------------------------------------------------
    def _set_state(self, p: int, state: ProcState) -> None:
        was_up = self.p_state[p] == UP
        if was_up != (state == UP):
            delta = -1 if was_up else 1
            for qi in self.p_pos[p]:
                self.up_listeners[qi] += delta
        was_down = self.p_state[p] == DOWN
        if was_down != (state == DOWN):  # registered in Redis while up or quiet
            self._registered += 1 if was_down else -1
        self.p_state[p] = state

    def _drop_idle(self, p: int, now: float) -> None:
        for fid in self.idle[p]:
            t0 = self.f_idle_since[fid]
            if now - t0 >= self.sc.fetch_timeout_s:
                self.idle_log.append((p, t0, now))
        self.idle[p].clear()

    def _down(self, p: int, now: float, *, lose: bool) -> None:
        self._drop_idle(p, now)
        self._gvl_clear(p, now)
        for fid in self.p_fetchers[p]:
            job = self.f_job[fid]
            if job is None:
                continue
            self.f_ev[fid] = Tick(fid)  # the pending completion becomes stale
            self.f_job[fid] = None
            self.running -= 1
            self.rec.add_busy(p, self.f_taken[fid], now)  # from when it was taken
            if lose:
                self.lost += 1
            else:
                self.pushed_back += 1
                self._push(job.queue, job, now, front=True)
        self.p_busy[p] = 0
        self._set_state(p, DOWN)
        self.p_restart_gen[p] += 1

    def _up(self, p: int, now: float) -> None:
        if self.p_state[p] == UP:
            return
        self._set_state(p, UP)
        self.p_restart_gen[p] += 1
        self._poller_started(p)
        for fid in self.p_fetchers[p]:
            if self.f_job[fid] is None:
                self._fetch(fid, now)

    def _quiet(self, p: int, now: float, timeout: float, boot: float) -> None:
        if self.p_state[p] != UP:
            return
        self._set_state(p, QUIET)
        self.p_restart_gen[p] += 1
        gen = self.p_restart_gen[p]
        self._boot[p] = boot
        self._drop_idle(p, now)
        if self.p_busy[p] == 0:
            self._restart_done(p, now)
            return
        ev = Timeout(self.env, timeout, (p, gen))
        ev.callbacks.append(self._on_shutdown_timeout)

    def _on_shutdown_timeout(self, ev: Timeout) -> None:
        p, gen = cast(tuple[int, int], ev.value)
        if self.p_restart_gen[p] != gen or self.p_state[p] != QUIET:
            return
        now = self.env.now
        self._down(p, now, lose=False)
        self._schedule_up(p, now + self._boot.get(p, 0.0))

    def _restart_done(self, p: int, now: float) -> None:
        self._set_state(p, DOWN)
        self.p_restart_gen[p] += 1
        self._schedule_up(p, now + self._boot.get(p, 0.0))

    def _schedule_up(self, p: int, at: float) -> None:
        gen = self.p_restart_gen[p]

        def up(_ev: object) -> None:
            if self.p_restart_gen[p] == gen:
                self._come_back(p, self.env.now)

        ev = Timeout(self.env, max(0.0, at - self.env.now))
        ev.callbacks.append(up)

    def _come_back(self, p: int, now: float) -> None:
        """A restart is over: the process comes up, or the processes that replaced it."""
        successors = self.p_successors.get(p)
        if successors is None:
            self._up(p, now)
            return
        for s in successors:
            self._come_back(s, now)
