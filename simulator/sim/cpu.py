"""The CPU model: one GVL per Sidekiq process, and the host's cores shared by its processes.

A job's execution of ``service`` seconds (what it takes with a core to itself) has a CPU part,
``cpu_share * service`` plus Sidekiq's own ``dispatch_cpu_s``, that runs Ruby, and a waiting
part (database, Gitaly, HTTP, Redis) that needs no core.  The CPU part comes first (one burst;
docs/simulator.md says why that is enough), then the wait.

* **GVL** (one per process): only one thread of a Ruby VM runs Ruby at a time, and Ruby hands
  the GVL over the way CRuby does: the threads that want it wait in line (first come, first
  served); the holder keeps it until its CPU part is over or, when another thread is waiting,
  until its time slice (:data:`QUANTUM_S`, Ruby's 100 ms) runs out; a thread whose slice ran
  out goes to the back of the line with what it has left.  The slice is Ruby 3.3's timer: the
  first thread to wait starts it; it runs on while threads wait (a holder that got the GVL
  from a thread whose part ended yields at the same tick), restarts when it takes the GVL
  away, and stops when nobody waits.  Measured on Ruby 3.3.8 (``scripts/gvl_probe.rb``): a
  thread waiting behind a CPU-bound holder got the GVL 100 ms later; a CPU-bound thread
  among two threads of short bursts held it 91 ms at a time.
* **The job starts when its thread first holds the GVL.**  A thread that takes a job needs the
  GVL before Sidekiq can even read the job (the fetch's reply, the JSON, the "start" log line
  with its ``scheduling_latency_s``), so a job taken by a thread of a busy process starts only
  after the CPU parts ahead of it: its queueing time includes that wait, and its thread is busy
  meanwhile.
* **Cores** (per node, ``Scenario.node_cpus``): a process whose GVL is held needs one core.  When
  more processes hold their GVL than the node has cores, the kernel shares the cores fairly:
  each such process runs at ``cores / busy`` of one.  A node missing from ``node_cpus``, or
  with at least as many cores as processes, never limits.

A CPU part that finds its GVL free (on a node that never limits) is planned as if alone: one
event for the whole job, as without the CPU model.  Only when another thread wants the GVL
before that part is over does the holder get a GVL event (its part's end or its slice's,
whichever comes first); a change of speed (the node's cores) plans it again, and the event
planned before goes stale.
"""

from __future__ import annotations

from heapq import heappush

from .kernel import NORMAL, Tick
from .state import ModelState

#: Ruby's thread time slice: a thread holding the GVL while another waits for it is asked to
#: hand it over after 100 ms (CRuby's TIME_QUANTUM).
QUANTUM_S = 0.1

INF = float("inf")


class Cpu(ModelState):
    def _gvl_enter(self, p: int, fid: int, cpu: float, wait: float, now: float) -> bool:
        """Thread ``fid`` of process ``p`` took a job: a CPU part of ``cpu`` seconds, then a wait
        of ``wait``.  False: the GVL was free (and the node never limits), so the job runs alone
        for now and the caller schedules its end as if there were no GVL; if another thread
        wants the GVL before that part is over, the holder gets a GVL event then."""
        self.f_left[fid] = cpu
        self.f_wait[fid] = wait
        h = self.g_hold[p]
        if h >= 0 and self.g_solo[p]:
            end = self.g_solo_end[p]
            if end <= now:  # the lone CPU part is over: the GVL is free
                h = self.g_hold[p] = -1
                self.g_solo[p] = False
            else:  # it is not: from now on the holder has a GVL event (its end goes stale)
                self.g_solo[p] = False
                self.f_ev[h] = Tick(h)
                self.g_busy[p] -= end - now  # counted in advance; counted as it runs now
                self.f_left[h] = end - now
                self.g_t[p] = now
        if h < 0:  # the GVL is free: the thread takes it now
            self.f_acq[fid] = True
            self.g_hold[p] = fid
            self.g_t[p] = now
            self.g_dl[p] = INF
            host = self.p_host[p]
            if host < 0:
                self.g_solo[p] = True
                self.g_solo_end[p] = now + cpu
                self.g_busy[p] += cpu
                return False
            self._host_change(host, 1, now)
            self.g_rate[p] = self.h_rate[host]
            self._gvl_plan(p)
            return True
        self.f_acq[fid] = False
        line = self.g_q[p]
        if not line:  # the first waiter starts the timer: the holder yields 100 ms on
            self.g_dl[p] = now + QUANTUM_S
            self._gvl_plan(p)
        line.append(fid)
        return True

    def _gvl_plan(self, p: int) -> None:
        """The holder's next GVL event: its part's end or its slice's, whichever comes first
        (``g_t`` current)."""
        h = self.g_hold[p]
        due = self.g_t[p] + self.f_left[h] / self.g_rate[p]
        dl = self.g_dl[p]
        if dl < due:
            due = dl
        if due != self.g_due[p]:
            ev = Tick(p)
            ev.callbacks = self._gvl_cbs
            ev.due = due
            self.g_ev[p] = ev  # the event planned before goes stale
            self.g_due[p] = due
            heappush(self._evq, (due, NORMAL, next(self._eid), ev))

    def _on_gvl(self, ev: Tick) -> None:
        p = ev.fid
        if ev is not self.g_ev[p]:
            return  # stale
        now = ev.due
        self.g_due[p] = INF
        h = self.g_hold[p]
        r = self.g_rate[p]
        run = (now - self.g_t[p]) * r
        self.g_busy[p] += run
        self.g_t[p] = now
        left = self.f_left[h] - run
        line = self.g_q[p]
        # Rounding: a part whose end is not after now, as floats go, is over.
        if left <= 1e-12 or now + left / r <= now:
            done = h
        elif line and now >= self.g_dl[p]:  # the slice is over: to the back of the line
            self.f_left[h] = left
            line.append(h)
            done = -1
        else:  # the node's cores changed the holder's speed: plan again
            self.f_left[h] = left
            self._gvl_plan(p)
            return
        if line:
            nxt = self.g_hold[p] = line.popleft()
            if not line:  # nobody waits behind it: no timer
                self.g_dl[p] = INF
            elif done < 0:  # the timer's tick preempted the holder: the next one
                self.g_dl[p] = now + QUANTUM_S
            # else the timer runs on: the new holder yields at its next tick
            if not self.f_acq[nxt]:  # its job starts now (its thread was busy meanwhile)
                self.f_acq[nxt] = True
                self.f_start[nxt] = now + self._hold
            self._gvl_plan(p)
        else:
            self.g_hold[p] = -1
            host = self.p_host[p]
            if host >= 0:
                self._host_change(host, -1, now)
        if done >= 0:  # the state is consistent: its next step may start new work
            wait = self.f_wait[done]
            if wait > 0:
                tick = self.f_ev[done]
                tick.callbacks = self._done_cbs
                t = tick.due = now + wait
                heappush(self._evq, (t, NORMAL, next(self._eid), tick))
            else:
                self._complete(done, now)

    def _host_change(self, host: int, delta: int, now: float) -> None:
        """A process of node ``host`` starts (``delta`` 1) or stops (-1) using a core."""
        a = self.h_active[host] + delta
        self.h_active[host] = a
        cores = self.h_cores[host]
        rate = 1.0 if a <= cores else cores / a
        if rate == self.h_rate[host]:
            return
        self.h_rate[host] = rate
        for q in self.h_procs[host]:
            h = self.g_hold[q]
            if h >= 0:
                run = (now - self.g_t[q]) * self.g_rate[q]
                self.f_left[h] -= run
                self.g_busy[q] += run
                self.g_t[q] = now
                self.g_rate[q] = rate
                self._gvl_plan(q)

    def _gvl_clear(self, p: int, now: float) -> None:
        """Process ``p`` stops: the CPU parts of its jobs end with it (the jobs are lost or
        pushed back by the caller)."""
        h = self.g_hold[p]
        if h < 0:
            return
        self.g_hold[p] = -1
        if self.g_solo[p]:
            self.g_busy[p] -= max(0.0, self.g_solo_end[p] - now)
            self.g_solo[p] = False
            return
        self.g_busy[p] += (now - self.g_t[p]) * self.g_rate[p]
        self.g_t[p] = now
        self.g_q[p].clear()
        self.g_ev[p] = Tick(p)  # the pending event goes stale
        self.g_due[p] = INF
        host = self.p_host[p]
        if host >= 0:
            self._host_change(host, -1, now)

    def _gvl_settle(self, now: float) -> None:
        """At the end: core time used up to ``now``."""
        for p, h in enumerate(self.g_hold):
            if h < 0:
                continue
            if self.g_solo[p]:
                self.g_busy[p] -= max(0.0, self.g_solo_end[p] - now)
            else:
                self.g_busy[p] += (now - self.g_t[p]) * self.g_rate[p]
                self.g_t[p] = now

    def _gvl_waiting(self, p: int) -> list[int]:
        """Threads of ``p`` whose job has not started: still waiting for the GVL."""
        return [fid for fid in self.g_q[p] if not self.f_acq[fid]]
