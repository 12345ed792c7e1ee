"""PNG plots of one run (matplotlib, Agg backend): what operators look at first."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..migration.rehearsal import ORDERS, Rehearsal
from ..sim.engine import RunResult
from ..sim.model import URGENCIES

__all__ = ["write_plots", "write_rehearsal_plots"]

_COLOURS = {"high": "#d62728", "low": "#1f77b4", "throttled": "#7f7f7f"}


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (imported only when a plot is drawn: the
    ``plots`` extra, checked by the commands before any work)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hours(t: np.ndarray, duration: float) -> tuple[np.ndarray, str]:
    if duration > 3 * 3600:
        return t / 3600, "time (h)"
    return t / 60, "time (min)"


def write_plots(run: RunResult, out_dir: str | Path, *, title: str = "") -> list[Path]:
    """Write latency.png, backlog.png, utilisation.png and redis.png; return their paths."""
    plt = _pyplot()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec = run.recorder
    w = rec.bin_width
    mids = (np.arange(rec.nbins) + 0.5) * w
    x, xlabel = _hours(mids, run.duration)
    written: list[Path] = []
    suffix = f" — {title}" if title else ""

    # 1. Queueing latency percentiles over time, one panel per urgency.
    present = [u for u, name in enumerate(URGENCIES) if rec.n_qu[:, u].sum()]
    fig, axes = plt.subplots(len(present) or 1, 1, figsize=(10, 2.8 * max(len(present), 1)),
                             sharex=True, squeeze=False)
    nu = len(URGENCIES)
    for ax, u in zip(axes[:, 0], present, strict=False):
        name = URGENCIES[u]
        rows = rec.ts_wait.counts[u::nu]  # (bins, latency bins)
        qs = np.array([rec.ts_wait._quantiles_of_row(r, [0.5, 0.95, 0.99]) for r in rows])
        floor = 1e-3
        for k, (label, style) in enumerate((("p50", ":"), ("p95", "--"), ("p99", "-"))):
            ax.plot(x, np.maximum(qs[:, k], floor), style, color=_COLOURS[name], label=label)
        target = rec.targets.queueing[name]
        if math.isfinite(target):
            ax.axhline(target, color="black", lw=1, alpha=0.6)
            ax.annotate(f"target {target:g} s", (x[0], target), xytext=(2, 3),
                        textcoords="offset points", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor * 0.8)
        ax.set_ylabel("queueing (s)\nfloor 1 ms")
        ax.set_title(f"{name} urgency: queueing latency percentiles", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(f"Queueing latency (enqueued → started){suffix}", fontsize=11)
    fig.tight_layout()
    written.append(_save(fig, out / "latency.png"))

    # 2. Backlog per queue (the queues that ever had one), plus jobs waiting for a retry.
    fig, ax = plt.subplots(figsize=(10, 4))
    backlog = rec.backlog_matrix()
    tb, _ = _hours(np.asarray(rec.backlog_t), run.duration)
    if backlog.size:
        peaks = backlog.max(axis=0)
        top = [q for q in np.argsort(-peaks)[:8] if peaks[q] > 0]
        for q in top:
            ax.plot(tb, backlog[:, q], label=run.queues[q][:40])
    if any(rec.retry_backlog):
        ax.plot(tb, rec.retry_backlog, "k--", label="retry set")
    if not ax.lines:
        ax.text(0.5, 0.5, "no backlog: every job was handed to a waiting thread",
                ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("jobs waiting")
    ax.set_title(f"Backlog per queue (largest 8){suffix}", fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    written.append(_save(fig, out / "backlog.png"))

    # 3. Thread utilisation per process.
    fig, ax = plt.subplots(figsize=(10, 4))
    util = rec.utilisation()
    cmap = plt.get_cmap("tab20")
    for p, proc in enumerate(run.processes):
        ax.plot(x, 100 * util[p], color=cmap(p % 20),
                label=f"{proc.name} {proc.group[:24]} ({proc.concurrency} thr)")
    ax.set_ylim(0, 105)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("busy threads (%)")
    ax.set_title(f"Thread utilisation per Sidekiq process{suffix}", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    written.append(_save(fig, out / "utilisation.png"))

    # 4. Redis CPU per shard.
    fig, ax = plt.subplots(figsize=(10, 3.5))
    cpu = rec.redis_cpu_share()
    for s, shard in enumerate(run.shards):
        ax.plot(x, 100 * cpu[s], label=f"shard {shard}")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("CPU (% of one core)")
    ax.set_title(f"Redis CPU from BRPOP traffic (cost model){suffix}", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, out / "redis.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_rehearsal_plots(rehearsal: Rehearsal, out_dir: str | Path) -> list[Path]:
    """``fleetsim migrate --plots``: stranded.png and latency.png, both orders."""
    plt = _pyplot()
    runs, orders = rehearsal.runs, rehearsal.orders
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colours = {"safe": "#2ca02c", "naive": "#d62728"}
    written = []

    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, name in zip(axes, ORDERS, strict=True):
        run = runs[name]
        t = np.array([s[0] for s in run.stranded]) / 60
        ax.step(t, [s[1] for s in run.stranded], where="post", color=colours[name],
                label="stranded (no listener up)")
        ax.step(t, [s[2] for s in run.stranded], where="post", color="black", lw=0.8,
                ls="--", label="no listener configured")
        for step in orders[name]:
            ax.axvline(step.event.at / 60, color="grey", lw=0.5, alpha=0.5)
        ax.set_title(f"{name} order: jobs stranded (grey lines: migration steps)", fontsize=10)
        ax.set_ylabel("jobs")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (min)")
    fig.tight_layout()
    path = out / "stranded.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(11, 4))
    for name in ORDERS:
        rec = runs[name].recorder
        x = (np.arange(rec.nbins) + 0.5) * rec.bin_width / 60
        for u, urgency in enumerate(URGENCIES):
            if not rec.n_bu[:, u].sum():
                continue
            style = {"high": "-", "low": "--", "throttled": ":"}[urgency]
            ax.plot(x, np.maximum(rec.wmax_bu[:, u], 1e-3), style, color=colours[name],
                    label=f"{name}, {urgency}")
    for urgency, target in runs["safe"].recorder.targets.queueing.items():
        if math.isfinite(target):
            ax.axhline(target, color="black", lw=0.8, alpha=0.5)
            ax.annotate(f"{urgency} target {target:g} s", (0, target), fontsize=8,
                        xytext=(2, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_ylabel("longest queueing wait (s)")
    ax.set_xlabel("time (min)")
    ax.set_title("Longest wait of the jobs started in each interval", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written
