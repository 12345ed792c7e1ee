"""Option types and checks shared by the simulator commands (argparse only, no work)."""

from __future__ import annotations

import argparse

from ..errors import FleetError, excerpt
from ..extras import require
from ..inputs import MAX_SEED, check_output_dir, parse_duration

__all__ = ["check_plots_dir", "duration", "int_list", "positive_int", "seed", "share"]


def duration(text: str) -> float:
    """Simulated time for an option: above 0, at most 30 days (``MAX_SIMULATED_S``)."""
    try:
        seconds = parse_duration(text, what="time")
    except FleetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be above 0 (e.g. 90s, 15m, 1h)")
    return seconds


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{excerpt(text)} is not a whole number (give a seed from 0 to {MAX_SEED})"
        ) from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"give a seed from 0 to {MAX_SEED}, not "
                                         f"{excerpt(text)}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{excerpt(text)} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{excerpt(text)}: give whole numbers like 5,10,20") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts must be 1 or more")
    return values


def share(text: str) -> float:
    """A share above 0 and at most 1: ``0.7`` or ``70%``."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{excerpt(text)} is not a share (give 0.7 or 70%)") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"{excerpt(text)} must be above 0 and at most 1 (0.7 or 70%)")
    return value


def check_plots_dir(path: str | None) -> None:
    """Fail before simulating when --plots cannot be written (exit 2, not a late traceback)."""
    if path:
        require("matplotlib", extra="plots", option="--plots")
        check_output_dir(path, option="--plots")
