"""Figures of sweeps and comparisons: a metric against each swept parameter."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MAX_PANELS_PER_ROW = 4
CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def short_name(value: str) -> str:
    """A class path (a data._target_) by its class name; any other value as it is."""
    return value.rsplit(".", 1)[-1] if CLASS_PATH.fullmatch(value) else value


def as_number(value: str) -> float | str:
    """An MLflow param (always a string) as a number when it is one."""
    try:
        return float(value)
    except ValueError:
        return value


def metric_vs_params(points: list[tuple[dict[str, str], float]], params: list[str], metric: str):
    """One panel per parameter: the metric of every trial against that parameter's value, as MLflow
    stores params (log axis when a numeric parameter spans more than a factor of 20)."""
    params = params or ["trial"]
    cols = min(len(params), MAX_PANELS_PER_ROW)
    rows = -(-len(params) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.5 * rows), squeeze=False)
    for axis in axes.flat[len(params) :]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, params, strict=False):
        xs = [as_number(p.get(name, str(i))) if name != "trial" else i for i, (p, _) in enumerate(points)]
        ys = [value for _, value in points]
        numeric = all(isinstance(x, (int, float)) for x in xs)
        if not numeric:
            labels = sorted({str(x) for x in xs})
            xs = [labels.index(str(x)) for x in xs]
            axis.set_xticks(range(len(labels)), [short_name(label) for label in labels], rotation=30)
        axis.scatter(xs, ys, alpha=0.8)
        if numeric and min(xs) > 0 and max(xs) / min(xs) > 20:
            axis.set_xscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    return fig
