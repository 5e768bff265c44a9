"""The report's plots (matplotlib, no display): latency and throughput against concurrency, and the distribution of
ack latencies."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.stats import Summary

COLOURS = {"serve": "#1f77b4", "split": "#2ca02c", "server": "#9467bd", "bare": "#7f7f7f", "bare server": "#bcbd22"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(results: dict[str, Any]) -> dict[str, dict[int, tuple[Summary, float]]]:
    """name → concurrency → (latency summary, turns per second); concurrency 1 is turns one at a time."""
    series: dict[str, dict[int, tuple[Summary, float]]] = {}
    for name, layout in results["layouts"].items():
        turns = layout["turns"]["turn"]
        bot = series.setdefault(name, {})
        bot[1] = (turns, 1 / turns.mean if turns.mean else math.nan)
        for level, found in layout["throughput"].items():
            bot[int(level)] = (found["latency"], found["rate"])
        bare_name = "bare server" if name == "server" else "bare"
        if bare_name in series and bare_name == "bare":
            continue  # the first layout's bare graph stands for all local layouts in the plots
        bare = series.setdefault(bare_name, {})
        bare_turn = layout["bare"]["turn"]
        bare[1] = (bare_turn, 1 / bare_turn.mean if bare_turn.mean else math.nan)
        for level, found in layout["bare"]["throughput"].items():
            bare[int(level)] = (found["latency"], found["rate"])
    return series


def latency_plot(results: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for name, points in _series(results).items():
        levels = sorted(points)
        colour = COLOURS.get(name)
        ax.plot(levels, [points[c][0].p50 * 1000 for c in levels], "o-", color=colour, label=f"{name} p50")
        ax.plot(levels, [points[c][0].p99 * 1000 for c in levels], "x--", color=colour, alpha=0.6, label=f"{name} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("conversations at once (1 = one turn at a time)")
    ax.set_ylabel("turn latency, ms (event POST → reply posted)")
    ax.set_title("Turn latency against concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def throughput_plot(results: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for name, points in _series(results).items():
        levels = sorted(points)
        ax.plot(levels, [points[c][1] for c in levels], "o-", color=COLOURS.get(name), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("conversations at once (1 = one turn at a time)")
    ax.set_ylabel("turns per second")
    ax.set_title("Throughput against concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def ack_plot(results: dict[str, Any], path: Path) -> None:
    """One panel per layout: the share of acks answered within x ms, a line per number in flight."""
    plt = _pyplot()
    layouts = [(name, layout["acks"]) for name, layout in results["layouts"].items() if layout.get("acks")]
    if not layouts:
        return
    fig, axes = plt.subplots(1, len(layouts), figsize=(6 * len(layouts), 4.5), dpi=110, squeeze=False)
    for ax, (name, acks) in zip(axes[0], layouts, strict=True):
        for level, found in sorted(acks.items(), key=lambda item: int(item[0])):
            samples = sorted(s * 1000 for s in found["samples"])
            if not samples:
                continue
            shares = [(i + 1) / len(samples) for i in range(len(samples))]
            ax.step(samples, shares, where="post", label=f"{level} in flight")
        for limit, label in ((20, "20 ms"), (150, "150 ms"), (3000, "3 s")):
            ax.axvline(limit, color="#d62728", alpha=0.35, linestyle=":")
            ax.text(limit, 0.02, label, rotation=90, fontsize=7, color="#d62728", va="bottom")
        ax.set_xscale("log")
        ax.set_xlabel("ack latency, ms (event POST → 200)")
        ax.set_ylabel("share of requests answered")
        ax.set_title(f"Ack latency: {name}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plots(results: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, draw in (
        ("latency-vs-concurrency.png", latency_plot),
        ("throughput-vs-concurrency.png", throughput_plot),
        ("ack-latency.png", ack_plot),
    ):
        path = folder / name
        draw(results, path)
        if path.exists():
            made.append(path)
    return made
