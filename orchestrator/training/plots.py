"""Figures logged under `plots/`: learning curves and the confusion matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def learning_curves(history: dict[str, list[tuple[int, float]]]):
    """One panel for losses and one for accuracies, against the training step."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, points in sorted(history.items()):
        if not points:
            continue
        steps, values = zip(*points, strict=False)
        axis = ax_loss if "loss" in key else ax_acc
        axis.plot(steps, values, marker="o", markersize=3, label=key)
    for axis, title in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int):
    """Counts of true class (rows) against predicted class (columns)."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * num_classes, 1 + 0.5 * num_classes))
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8, color="white" if value > counts.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(num_classes))
    ax.set_yticks(range(num_classes))
    ax.set_title("confusion matrix (test)")
    fig.tight_layout()
    return fig
