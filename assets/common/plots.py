"""Small PNG plots for asset metadata, where a picture reads faster than numbers.

Each returns Markdown with the PNG inlined (``data:`` URI), which the Dagster UI renders in the
asset's metadata; about 10-20 kB each.
"""

from __future__ import annotations

import base64
import io


def _png_markdown(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def _figure(w: float = 4.0, h: float = 2.6):
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def curve_markdown(
    points: list[tuple[float, float]], xlabel: str, ylabel: str, target: float | None = None, title: str = ""
) -> str:
    """A line plot of ``(x, y)`` points (e.g. recall against nprobe), with an optional target line."""
    fig, ax = _figure()
    xs, ys = zip(*points) if points else ((), ())
    ax.plot(xs, ys, marker="o")
    if all(float(x).is_integer() for x in xs):  # trial numbers, nprobe: no 0.5 ticks
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _png_markdown(fig, title or ylabel)


def bars_markdown(values: dict[str, float], ylabel: str, title: str = "") -> str:
    """A bar chart of named values (e.g. recall per strategy against a baseline)."""
    fig, ax = _figure()
    ax.bar(list(values), list(values.values()), color=["#4c72b0"] * (len(values) - 1) + ["#999999"])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _png_markdown(fig, title or ylabel)
