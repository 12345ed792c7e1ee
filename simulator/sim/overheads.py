"""The time Sidekiq and Redis spend around a job besides its own execution: the one place the
engine's overhead constants live (docs/simulator.md, "Overheads").

* ``enqueue_visible_s``: from the moment a producer pushes a job (its ``enqueued_at``) until a
  fetcher can pop it (the LPUSH reaching Redis). The job waits meanwhile; no thread is held.
* ``fetch_round_trip_s``: a thread that finds work (a job waiting when it asks, or a job handed
  to it while it blocks) gets it one ``BRPOP``/``BZPOPMIN`` round trip later.
* ``dispatch_s``: Sidekiq's processor before the job's ``perform`` runs (parse the payload,
  build the worker, the server middleware), as a wait: time that holds the thread.
* ``dispatch_cpu_s``: the Ruby Sidekiq itself runs per job outside ``perform`` (the fetch's
  reply, JSON, middleware, log lines, the acknowledgement): CPU on the process's GVL, added to
  the job's CPU part. It is what bounds a process of CPU-bound jobs below 1 / cpu_s; the lab's
  fidelity stage measures it (process CPU time less the jobs' own ``cpu_s``, per job).

The last two hold the thread: the job counts as taken (it is no longer in Redis) but its
execution starts ``fetch_round_trip_s + dispatch_s`` later, so its queueing time (enqueued to
execution start, as GitLab's ``scheduling_latency_s``/``queue_duration_s`` measure it) and the
thread's busy time include them. A saturated thread serves at most
``1 / (service + fetch_round_trip_s + dispatch_s)`` jobs a second.

The defaults are small figures for a LAN (Redis well under a millisecond away, a plain worker's
middleware) until the lab measures them; :meth:`Overheads.zero` is the ideal queue the
queueing-theory checks compare with (M/M/c, Erlang C), and the engine as it was before
overheads were modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = [
    "DEFAULT_DISPATCH_CPU_S",
    "DEFAULT_DISPATCH_S",
    "DEFAULT_ENQUEUE_VISIBLE_S",
    "DEFAULT_FETCH_ROUND_TRIP_S",
    "MAX_OVERHEAD_S",
    "Overheads",
]

# The defaults are the lab's (docs/fidelity.md, "Calibration"): jobs on idle threads started
# 0.89 ms (median) after their enqueued_at, which is the three waits below together; one
# process of 20 threads saturated with CPU-bound jobs did 47 jobs/s of 19.9 ms of their own
# CPU; the workers' processes used 0.7 to 1.3 ms of CPU per job more than the jobs' own cpu_s
# (utime + stime against the logs); IO-bound jobs near saturation queued as if the threads lost
# next to nothing between jobs, so most of the 0.89 ms is on the producer's side.
#: One Redis round trip between a fetcher and Redis on the lab's network: 0.2 ms.
DEFAULT_FETCH_ROUND_TRIP_S = 0.0002
#: Sidekiq's processor per job before ``perform`` (as a wait): 0.1 ms.
DEFAULT_DISPATCH_S = 0.0001
#: Sidekiq's own Ruby per job outside ``perform``, on the GVL: 1 ms.
DEFAULT_DISPATCH_CPU_S = 0.001
#: From the producer's ``enqueued_at`` (taken before the push) to the job in Redis and a
#: blocked fetcher woken: 0.6 ms.
DEFAULT_ENQUEUE_VISIBLE_S = 0.0006
#: Largest overhead a workload may give: anything longer is a mistake of units (ms for s).
MAX_OVERHEAD_S = 60.0


@dataclass(frozen=True)
class Overheads:
    """Per-job overheads (seconds, each finite and 0 or more). To be calibrated by the lab."""

    fetch_round_trip_s: float = DEFAULT_FETCH_ROUND_TRIP_S
    dispatch_s: float = DEFAULT_DISPATCH_S
    enqueue_visible_s: float = DEFAULT_ENQUEUE_VISIBLE_S
    dispatch_cpu_s: float = DEFAULT_DISPATCH_CPU_S

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or not 0.0 <= value <= MAX_OVERHEAD_S):
                raise ValueError(
                    f"overhead {f.name} is {value!r}: give seconds from 0 to {MAX_OVERHEAD_S:g}")

    @classmethod
    def zero(cls) -> Overheads:
        """No overhead: the ideal queue (jobs start the instant a thread is free)."""
        return cls(0.0, 0.0, 0.0, 0.0)

    @property
    def hold_s(self) -> float:
        """Time a thread holds a job before its execution starts."""
        return self.fetch_round_trip_s + self.dispatch_s

    @property
    def total_s(self) -> float:
        """What the overheads add to a job's time in the system when no job waits for a thread."""
        return self.hold_s + self.enqueue_visible_s
