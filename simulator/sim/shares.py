"""Shares of jobs written so that a late job is never rounded away.

``99.9996 %`` rounded to two decimals reads ``100.00 %`` although a job was late; these
helpers round *down* (a share below 1 never reads as 1) and put the counts first.
"""

from __future__ import annotations

__all__ = ["floor_ratio", "floor_share", "late_text", "percent_floor"]


def floor_share(ok: int, n: int, digits: int = 6) -> float:
    """``ok / n`` rounded down to ``digits`` decimals (1.0 only when ``ok == n``)."""
    if n <= 0 or ok >= n:
        return 1.0
    return (max(ok, 0) * 10**digits // n) / 10**digits


def floor_ratio(share: float, digits: int = 6) -> float:
    """A share already divided (a float) rounded down to ``digits`` decimals."""
    if share >= 1.0:
        return 1.0
    scale = 10**digits
    # + 1e-6 of a unit: a share like 0.999 (stored as 0.99899999...) stays 0.999; a share below
    # 1 is at least 1e-11 below it (fewer than 1e11 jobs), so it never reaches 1.
    return float(int(share * scale + 1e-6)) / scale if share > 0 else 0.0


def percent_floor(ok: int, n: int, decimals: int = 2) -> str:
    """``ok / n`` as a percentage rounded down, in exact integer arithmetic: ``"100%"`` only
    when every job was on time, so ``"99.99%"`` for 1 late job in 10 million."""
    if n <= 0 or ok >= n:
        return "100%"
    q = max(ok, 0) * 10 ** (decimals + 2) // n
    whole, frac = divmod(q, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}%" if decimals else f"{whole}%"


def late_text(late: int, jobs: int) -> str:
    """Counts first, then the share on time: ``"2 of 45,123 late (99.99% on time)"``."""
    return f"{late:,} of {jobs:,} late ({percent_floor(jobs - late, jobs)} on time)"
