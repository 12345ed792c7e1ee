"""PNG plots of one run (matplotlib, Agg backend): what operators look at first.

Each picture answers one question and says its answer in its title:

* ``latency.png``, per urgency: did it meet its queueing target, and when not?  The p95 and the
  SLO's quantile (p99.9 for the 0.999 apdex) of the waits over a sliding window (one minute,
  or one statistics bin when bins are longer), the target, the windows where fewer jobs than
  the apdex started within the target shaded, and the verdict with its figures in the title;
* ``backlog.png``: which queues had jobs waiting, and how many (the title counts the queues
  drawn);
* ``utilisation.png``: how busy each process's threads were (a distinct colour per process);
* ``redis.png``: Redis CPU per shard (the cost model).

Fleet events are marked on every time axis; a Redis failover's downtime is shaded.  The
``*_figure`` functions return the matplotlib Figure (tests read titles and series from it);
:func:`write_plots` saves them with the whole legend inside the picture.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..migration.rehearsal import ORDERS, Rehearsal
from ..sim.engine import RunResult
from ..sim.model import URGENCIES
from ..sim.shares import floor_ratio

__all__ = [
    "backlog_figure",
    "distinct_styles",
    "latency_figure",
    "redis_figure",
    "utilisation_figure",
    "write_plots",
    "write_rehearsal_plots",
]

_COLOURS = {"high": "#d62728", "low": "#1f77b4", "throttled": "#7f7f7f"}
#: The sliding window of the latency percentiles (at least one statistics bin).
WINDOW_S = 60.0
#: Queues drawn on the backlog plot, largest peak first.
MAX_BACKLOG_QUEUES = 8
_MISSED_FILL = "#f4b6b6"
_DOWN_FILL = "#c9b3e6"


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


def _scale(duration: float) -> float:
    return 3600.0 if duration > 3 * 3600 else 60.0


def _span(seconds: float) -> str:
    """``45 s``, ``1 min``, ``2.5 min``, ``3 h``."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def distinct_styles(n: int) -> list[tuple[Any, str]]:
    """``n`` (colour, line style) pairs, no two alike: tab20's ten strong colours, then its ten
    light ones, then the same twenty dashed, dotted, dash-dotted."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab20")
    colours = [cmap(i) for i in range(0, 20, 2)] + [cmap(i) for i in range(1, 20, 2)]
    styles = ("-", "--", ":", "-.")
    return [(colours[i % 20], styles[(i // 20) % len(styles)]) for i in range(n)]


def _mark_events(ax: Any, run: RunResult, scale: float, *, label: bool,
                 names: bool = True) -> None:
    """Fleet events as dotted lines named at the top of the axes (``names``), a Redis
    failover's downtime as a shaded span (in the legend when ``label``)."""
    for f in run.failovers:
        ax.axvspan(f.at_s / scale, min(f.at_s + f.downtime_s, run.duration) / scale,
                   color=_DOWN_FILL, alpha=0.5, lw=0, zorder=0,
                   label=f"Redis {f.shard} down" if label else None)
    for t, action, _ in run.event_log:
        if action == "redis_failover":
            continue
        ax.axvline(t / scale, color="#555555", lw=0.8, ls=":", zorder=1)
        if names:
            ax.annotate(action, (t / scale, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(-2, -3), textcoords="offset points", rotation=90,
                        ha="right", va="top", fontsize=7, color="#555555")


def _short(name: str, width: int = 56) -> str:
    """A long queue name with its middle elided, so names that share a prefix stay apart."""
    if len(name) <= width:
        return name
    half = (width - 1) // 2
    return name[:half] + "…" + name[-(width - 1 - half):]


def _unit(top: float) -> tuple[str, float]:
    """The unit a wait axis reads best in, for waits up to ``top`` seconds."""
    if top > 2 * 3600:
        return "h", 3600.0
    if top > 5 * 60:
        return "min", 60.0
    return "s", 1.0


def _windows(rec: Any) -> tuple[int, float]:
    k = max(1, round(WINDOW_S / rec.bin_width))
    return k, k * rec.bin_width


def _rolling(a: np.ndarray, k: int) -> np.ndarray:
    """Sums over the last ``k`` rows (fewer at the start), along axis 0."""
    c = np.cumsum(a, axis=0)
    out = c.copy()
    out[k:] = c[k:] - c[:-k]
    return out


def latency_figure(run: RunResult, *, title: str = "") -> Any:
    """Per urgency: the queueing waits over a sliding window against the target, and the
    verdict."""
    plt = _pyplot()
    rec = run.recorder
    t = rec.targets
    present = [u for u, _ in enumerate(URGENCIES) if rec.n_qu[:, u].sum()]
    fig, axes = plt.subplots(max(len(present), 1), 1, figsize=(11, 3.1 * max(len(present), 1)),
                             sharex=True, squeeze=False, layout="constrained")
    k, window = _windows(rec)
    scale = _scale(run.duration)
    x = (np.arange(rec.nbins) + 1) * rec.bin_width  # each window ends at its bin's end
    x = np.minimum(x, run.duration) / scale
    nu = len(URGENCIES)
    level = t.queueing_apdex
    qname = f"p{level * 100:g}"
    for row, (ax, u) in enumerate(zip(axes[:, 0], present, strict=False)):
        name = URGENCIES[u]
        colour = _COLOURS[name]
        counts = _rolling(rec.ts_wait.counts[u::nu].astype(np.int64), k)  # (bins, latency bins)
        qs = np.array([rec.ts_wait._quantiles_of_row(r, [0.95, level]) for r in counts])
        # The histogram's bins are 12 % wide: never above the window's longest wait.
        longest = np.array([rec.wmax_bu[max(0, b - k + 1):b + 1, u].max()
                            for b in range(rec.nbins)])
        qs = np.minimum(qs, longest[:, None])
        target = t.queueing[name]
        top = float(np.nanmax(qs)) if np.isfinite(qs).any() else 0.0
        unit, div = _unit(max(top, target if math.isfinite(target) else 0.0))
        ax.plot(x, qs[:, 0] / div, "--", color=colour, lw=1.2, label="p95")
        ax.plot(x, qs[:, 1] / div, "-", color=colour, lw=1.8,
                label=f"{qname} (SLO: {level:.1%} within target)" if math.isfinite(target)
                else qname)
        n = int(rec.n_qu[:, u].sum())
        ok = int(rec.wok_qu[:, u].sum())
        if math.isfinite(target):
            ax.axhline(target / div, color="black", lw=1.2, label=f"target {_span(target)}")
            n_w = _rolling(rec.n_bu[:, u], k)
            ok_w = _rolling(rec.wok_bu[:, u], k)
            missed = (n_w > 0) & (ok_w < level * n_w)
            for b in np.flatnonzero(missed):
                ax.axvspan(b * rec.bin_width / scale,
                           min((b + 1) * rec.bin_width, run.duration) / scale,
                           color=_MISSED_FILL, lw=0, zorder=0,
                           label=(f"window under {level:.1%} within target"
                                  if b == np.flatnonzero(missed)[0] else None))
            share = floor_ratio(ok / n, 4) if n else 1.0
            met = not n or ok / n >= level
            verdict = (f"{name} urgency: target met — {share:.2%} of {n:,} jobs started "
                       f"within {_span(target)} (SLO {level:.1%})")
            if not met:
                verdict = (f"{name} urgency: target MISSED — {share:.2%} of {n:,} jobs "
                           f"started within {_span(target)} (SLO {level:.1%})")
            if missed.any():
                verdict += (f"; windows under target for "
                            f"{_span(float(missed.sum()) * rec.bin_width)}")
            ax.set_ylim(0, max(1.5 * target, 1.05 * top) / div)
        else:
            most = float(rec.wait_mom_u.max[u]) if rec.wait_mom_u.n[u] else 0.0
            verdict = (f"{name} urgency: no queueing target — {n:,} jobs, longest wait "
                       f"{_span(most)}")
            ax.set_ylim(0, max(1.05 * top, 1e-3) / div)
        ax.set_title(verdict, fontsize=10, loc="left",
                     color="black" if "MISSED" not in verdict else "#b00000")
        _mark_events(ax, run, scale, label=True, names=row == 0)
        ax.set_ylabel(f"queueing wait ({unit})")
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, run.duration / scale)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        if row == len(present) - 1:
            ax.set_xlabel(_hours(np.zeros(1), run.duration)[1])
    suffix = f" — {title}" if title else ""
    fig.suptitle(f"Queueing wait (enqueued → started), over sliding {_span(window)} windows"
                 f"{suffix}", fontsize=11)
    return fig


def backlog_figure(run: RunResult, *, title: str = "") -> Any:
    """Jobs waiting per queue (the largest few that ever had any) and in the retry set."""
    plt = _pyplot()
    rec = run.recorder
    fig, ax = plt.subplots(figsize=(11, 4), layout="constrained")
    scale = _scale(run.duration)
    backlog = rec.backlog_matrix()
    tb = np.asarray(rec.backlog_t) / scale
    shown: list[int] = []
    with_backlog = 0
    if backlog.size:
        peaks = backlog.max(axis=0)
        with_backlog = int((peaks > 0).sum())
        shown = [int(q) for q in np.argsort(-peaks, kind="stable")[:MAX_BACKLOG_QUEUES]
                 if peaks[q] > 0]
        for q, (colour, style) in zip(shown, distinct_styles(len(shown)), strict=True):
            ax.plot(tb, backlog[:, q], style, color=colour,
                    label=f"{_short(run.queues[q])} (peak {int(peaks[q]):,})")
    retry = any(rec.retry_backlog)
    if retry:
        ax.plot(tb, rec.retry_backlog, "k--", lw=1, label="retry set (not a queue)")
    _mark_events(ax, run, scale, label=True)
    if not shown and not retry:
        ax.text(0.5, 0.5, "no backlog: every job was handed to a waiting thread",
                ha="center", va="center", transform=ax.transAxes)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if not shown:
        what = "no queue had jobs waiting"
    elif with_backlog > len(shown):
        what = f"the {len(shown)} largest of the {with_backlog} queues that had jobs waiting"
    else:
        what = (f"the {'only queue' if len(shown) == 1 else f'{len(shown)} queues'} that had "
                "jobs waiting")
    suffix = f" — {title}" if title else ""
    ax.set_title(f"Backlog: {what}{' (and the retry set)' if retry else ''}{suffix}",
                 fontsize=11, loc="left")
    ax.set_xlabel(_hours(np.zeros(1), run.duration)[1])
    ax.set_ylabel(f"jobs waiting\n(sampled every {_span(rec.bin_width)})")
    ax.set_xlim(0, run.duration / scale)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    return fig


def utilisation_figure(run: RunResult, *, title: str = "") -> Any:
    """Busy threads per process over time, each process its own colour."""
    plt = _pyplot()
    rec = run.recorder
    fig, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
    scale = _scale(run.duration)
    x = np.minimum((np.arange(rec.nbins) + 0.5) * rec.bin_width, run.duration) / scale
    util = rec.utilisation()
    procs = run.processes
    for p, (proc, (colour, style)) in enumerate(zip(procs, distinct_styles(len(procs)),
                                                    strict=True)):
        group = f" {proc.group[:32]}" if proc.group else ""
        ax.plot(x, 100 * util[p], style, color=colour, lw=1.2,
                label=f"{proc.name}{group} ({proc.concurrency} thr)")
    _mark_events(ax, run, scale, label=False)
    ax.set_ylim(0, 105)
    ax.set_xlim(0, run.duration / scale)
    ax.set_xlabel(_hours(np.zeros(1), run.duration)[1])
    ax.set_ylabel(f"busy threads (%)\nper {_span(rec.bin_width)}")
    suffix = f" — {title}" if title else ""
    ax.set_title(f"Thread utilisation of the {len(procs)} Sidekiq "
                 f"process{'es' if len(procs) != 1 else ''}{suffix}", fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
              ncol=1 if len(procs) <= 24 else 2)
    return fig


def redis_figure(run: RunResult, *, title: str = "") -> Any:
    """Redis CPU per shard from the BRPOP cost model."""
    plt = _pyplot()
    rec = run.recorder
    fig, ax = plt.subplots(figsize=(11, 3.6), layout="constrained")
    scale = _scale(run.duration)
    x = np.minimum((np.arange(rec.nbins) + 0.5) * rec.bin_width, run.duration) / scale
    cpu = rec.redis_cpu_share()
    for s, (shard, (colour, style)) in enumerate(zip(run.shards, distinct_styles(
            len(run.shards)), strict=True)):
        ax.plot(x, 100 * cpu[s], style, color=colour, label=f"shard {shard}")
    _mark_events(ax, run, scale, label=True)
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, run.duration / scale)
    ax.set_xlabel(_hours(np.zeros(1), run.duration)[1])
    ax.set_ylabel("CPU (% of one core)")
    suffix = f" — {title}" if title else ""
    ax.set_title(f"Redis CPU from BRPOP traffic, {len(run.shards)} "
                 f"shard{'s' if len(run.shards) != 1 else ''} (cost model: compare "
                 f"configurations){suffix}", fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def write_plots(run: RunResult, out_dir: str | Path, *, title: str = "") -> list[Path]:
    """Write latency.png, backlog.png, utilisation.png and redis.png; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        _save(latency_figure(run, title=title), out / "latency.png"),
        _save(backlog_figure(run, title=title), out / "backlog.png"),
        _save(utilisation_figure(run, title=title), out / "utilisation.png"),
        _save(redis_figure(run, title=title), out / "redis.png"),
    ]


def _save(fig: Any, path: Path) -> Path:
    """Save the whole figure, legends outside the axes included."""
    plt = _pyplot()
    fig.savefig(path, dpi=110, bbox_inches="tight")
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
    written.append(_save(fig, out / "stranded.png"))

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
    written.append(_save(fig, out / "latency.png"))
    return written
