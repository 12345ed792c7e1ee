"""What the engine moves around: jobs (named fields) and the states of a Sidekiq process."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["DOWN", "QUIET", "UP", "Job", "ProcState"]


@dataclass(slots=True)
class Job:
    """One job: a Sidekiq job payload as far as the model needs it (a slots class: cheaper to
    build than a NamedTuple and as cheap to read as a tuple)."""

    cls: int  #: index of its job class
    queue: int  #: index of the queue it is in (or was pushed to)
    enqueued: float  #: when it was last pushed (arrival, or a retry's push)
    retries: int  #: failures so far (0 for a first execution)
    service: float  #: execution time of this attempt, seconds
    fails: bool  #: this attempt fails


class ProcState(IntEnum):
    UP = 0  #: fetching
    QUIET = 1  #: finishing its running jobs before a restart
    DOWN = 2  #: stopped, restarting or not started yet


# Module-level aliases: the hot paths compare against these (an Enum attribute lookup is slow).
UP, QUIET, DOWN = ProcState.UP, ProcState.QUIET, ProcState.DOWN
