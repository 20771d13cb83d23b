"""Drawing: every figure of the inspection commands, from numbers computed elsewhere (matplotlib, Agg backend).

matplotlib is imported here only, so the rest of `hf_seq.inspection` (the numbers) works without it.
"""

import json
import math
import os
from pathlib import Path

import numpy as np


# Fonts that draw Hangul, tried in order; without one, Korean labels render as boxes (the numbers are unaffected).
HANGUL_FONTS = (
    "NanumGothic",
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "UnDotum",
    "Baekmuk Gulim",
    "AppleGothic",
    "Malgun Gothic",
)


def pyplot():
    """matplotlib.pyplot on the Agg backend, with a Hangul-capable font first in the list when one is installed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    installed = {font.name for font in font_manager.fontManager.ttflist}
    if not any(name in installed for name in HANGUL_FONTS):
        # matplotlib's font cache may predate a font installed since: register Hangul font files found on disk.
        for path in font_manager.findSystemFonts():
            if any(key in os.path.basename(path).lower() for key in ("nanum", "cjk", "notosanskr", "undotum")):
                font_manager.fontManager.addfont(path)
        installed = {font.name for font in font_manager.fontManager.ttflist}
    hangul = [name for name in HANGUL_FONTS if name in installed]
    plt.rcParams["font.family"] = [*hangul, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False  # Hangul fonts often lack the unicode minus sign
    plt.rcParams["mathtext.fontset"] = "dejavusans"  # log-axis exponents: drawn with DejaVu, which has the signs
    return plt


def save_figure(figure, path: str | os.PathLike, dpi: int = 90) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    return path


def save_json(data: dict, path: str | os.PathLike) -> Path:
    """The numbers behind a figure; NaN and infinities become null (JSON has no such numbers)."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(data), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _plot_by_distance(ax, curves: dict[str, list[float] | None], title: str) -> None:
    from matplotlib.ticker import FuncFormatter

    for label, norms in curves.items():
        if norms is None:
            continue
        values = np.asarray(norms, dtype=float)
        values = np.where(values > 0, values, np.nan)  # log axis: an exact 0 (dead relu units) is left out
        ax.semilogy(np.arange(len(values)), values / values[min(1, len(values) - 1)], label=label)
    # Plain-text tick labels ("1e-13"): the mathtext exponents need a minus sign that Hangul fonts may lack.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
    ax.set_xlabel("distance T - t")
    ax.set_ylabel("|dL_T/dh_t| / |dL_T/dh_(T-1)|")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)


def gradient_flow_figure(trained: dict, clipping: dict):
    """Three panels: gradient by distance at initialisation, after training, and the relu RNN's loss with/without clipping."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    cells = trained["cells"]
    _plot_by_distance(
        axes[0], {c: r["init"] for c, r in cells.items()}, f"at initialisation ({trained['initializer']})"
    )
    _plot_by_distance(
        axes[1], {c: r["trained"] for c, r in cells.items()}, f"after {trained['train_steps']} training steps"
    )
    for label, run in clipping["runs"].items():
        losses = np.asarray(run["losses"], dtype=float)
        suffix = f" (diverged at step {run['diverged_at']})" if run["diverged_at"] is not None else ""
        axes[2].plot(np.arange(len(losses)), np.clip(losses, 0, 50), label=label + suffix)
    axes[2].set_xlabel("SGD step")
    axes[2].set_ylabel("training loss")
    axes[2].set_title(f"relu RNN, SGD lr {clipping['learning_rate']}, clip {clipping['clip_norm']}", fontsize=10)
    axes[2].legend(fontsize=7)
    return figure


def initializer_figure(comparison: dict):
    """One panel per initialiser, the cells' gradient-by-distance curves in each (same input, same seed)."""
    plt = pyplot()
    norms = comparison["norms"]
    figure, axes = plt.subplots(1, len(norms), figsize=(4 * len(norms), 3.6), sharey=True)
    for ax, (initializer, by_cell) in zip(np.atleast_1d(axes), norms.items()):
        _plot_by_distance(ax, by_cell, f"{initializer} (hidden {comparison['hidden_size']})")
    return figure


def heatmap(
    ax,
    matrix: np.ndarray,
    column_labels: list[str],
    row_labels: list[str] | None = None,
    title: str = "",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
):
    """A (rows x columns) matrix as an image with its labels; the building block of every heatmap here."""
    image = ax.imshow(
        np.asarray(matrix, dtype=float), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    ax.set_xticks(range(len(column_labels)))
    ax.set_xticklabels(column_labels, fontsize=7, rotation=90 if max(map(len, column_labels), default=0) > 2 else 0)
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)))
        ax.set_yticklabels(row_labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    return image


def attention_heatmap(
    weights: np.ndarray, target_labels: list[str], source_labels: list[str], ax=None, title: str = "attention"
):
    """A (target x source) attention matrix: row i is where output position i looked. Usable for self-attention
    (target = source = the tokens) and for a seq2seq model's cross-attention (decoder tokens x encoder tokens)."""
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(target_labels), len(source_labels)):
        raise ValueError(
            f"weights of shape {weights.shape} do not match {len(target_labels)} target and "
            f"{len(source_labels)} source labels"
        )
    figure = None
    if ax is None:
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(0.3 * len(source_labels) + 2, 0.3 * len(target_labels) + 1))
    heatmap(ax, weights, source_labels, target_labels, title=title, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xlabel("source (attended to)")
    ax.set_ylabel("target (attending)")
    return figure if figure is not None else ax.figure


def coloured_text_png(
    rows: list[tuple[str, list[str], list[float]]], path: str | os.PathLike, columns: int = 60
) -> Path:
    """Each row (title, characters, values in [-1, 1]) drawn as text on coloured boxes: red +, blue -."""
    plt = pyplot()
    colormap = plt.get_cmap("coolwarm")
    lines = []
    for title, characters, values in rows:
        lines.append((title, None, None))
        for start in range(0, len(characters), columns):
            lines.append((None, characters[start : start + columns], values[start : start + columns]))
    figure = plt.figure(figsize=(columns * 0.16, 0.26 * len(lines) + 0.2))
    ax = figure.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, columns)
    ax.set_ylim(len(lines), 0)
    ax.axis("off")
    for line_number, (title, characters, values) in enumerate(lines):
        if title is not None:
            ax.text(0, line_number + 0.75, title, fontsize=8, weight="bold")
            continue
        for column, (character, value) in enumerate(zip(characters, values)):
            ax.add_patch(plt.Rectangle((column, line_number + 0.05), 1, 0.9, color=colormap(0.5 + 0.5 * value)))
            ax.text(column + 0.5, line_number + 0.7, character if character != " " else "·", ha="center", fontsize=7)
    return save_figure(figure, path)
