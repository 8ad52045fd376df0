"""Figures of measured numbers (matplotlib): metric-vs-option lines for sweeps, grouped bars
for comparisons. Pictures of directions themselves are in :mod:`latentdirs.render`.
"""
from __future__ import annotations

from pathlib import Path

from .runs import atomic_path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG atomically and free it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    _pyplot().close(fig)
    return path


def line_panels(panels: list[dict], ticks: list[str], xlabel: str, path: str | Path, legend: bool = True) -> Path:
    """A 2x2 grid of panels ``{"title", "lines": [{"label", "points": [(x, y)], "dashed", "group"}],
    "ylim", "reference"}``; lines of one group share a colour, x positions are tick indices."""
    if not 1 <= len(panels) <= 4:  # zip with the 2x2 axes would drop a fifth panel without a word
        raise ValueError(f"line_panels draws 1 to 4 panels (a 2x2 grid), got {len(panels)}")
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(8, 6))
    for ax, panel in zip(axes.flat, panels):
        for line in panel["lines"]:
            if line["points"]:
                x, y = zip(*line["points"])
                ax.plot(x, y, "--" if line["dashed"] else "-", marker="o", color=f"C{line['group']}",
                        label=line["label"])
        if panel.get("reference"):
            label, values = panel["reference"]
            ax.plot(range(len(values)), values, ":", color="grey", label=label)
        if panel.get("ylim"):
            ax.set_ylim(*panel["ylim"])
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xticks(range(len(ticks)), ticks)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    if legend:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def grouped_bars(groups: list[str], series: dict[str, tuple[list[float], list[float]]], path: str | Path,
                 ylim: tuple[float, float] = (0, 1.05)) -> Path:
    """One group of bars per entry of ``groups``, one bar per series ``{label: (means, stds)}``."""
    if not series:
        raise ValueError("grouped_bars needs at least one series {label: (means, stds)}")
    for label, (means, stds) in series.items():
        if len(means) != len(groups) or len(stds) != len(groups):  # matplotlib would repeat a single value
            raise ValueError(f"series {label!r} has {len(means)} means and {len(stds)} stds for {len(groups)} groups: "
                             "give one of each per group")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.6 + 1.4 * len(groups), 3.6), dpi=120)
    width = 0.8 / len(series)
    for i, (label, (means, stds)) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(*ylim)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
