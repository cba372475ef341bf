"""The report's figures: accuracy against iterations, accuracy against bytes (real and
paper-style), and conv1 mask pictures as in Figs. 8/9. Needs matplotlib (extra "plot")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcepl_dist.config import load_config
from mcepl_dist.model import network_for
from mcepl_dist.report.runs import (
    Cell,
    CellIndex,
    Curve,
    Run,
    cell_key,
    conv1_masks,
    has_masks,
    read_curve,
)
from mcepl_dist.sweepfile import Figure


@dataclass
class Plot:
    """What one figure shows, for its caption."""

    path: Path
    caption: str
    shown: list[str] = field(default_factory=list)


def _figure_runs(fig: Figure, found: CellIndex
                 ) -> list[tuple[str, Cell]]:
    """(row, shown cell) for each of the figure's rows that has runs."""
    out = []
    for row in fig.rows:
        shown = found.get(cell_key(row, fig.column))
        if shown:
            out.append((row, shown[0]))
    return out


def _curve_runs(cell: Cell) -> list[tuple[Run, Curve]]:
    """The seeds a cell's curve averages: those evaluated at least wherever the most often
    evaluated one was. Averaging over every seed keeps only the evaluations all share, so
    one seed evaluated every 50 beside two every 20 would thin the curve to every 100."""
    curves = [(r, read_curve(r)) for r in cell.runs]
    densest = max((set(c.iters.tolist()) for _, c in curves), key=len)
    return [(r, c) for r, c in curves if densest <= set(c.iters.tolist())]


def _mean_curve(cell: Cell) -> Curve:
    """The curve of a cell: the mean over its seeds (those of `_curve_runs`) of each seed's
    curve, at the evaluations they share."""
    curves = [c for _, c in _curve_runs(cell)]
    common = sorted(set.intersection(*(set(c.iters.tolist()) for c in curves)))

    def pick(c: Curve, attr: str) -> np.ndarray:
        index = {int(it): i for i, it in enumerate(c.iters)}
        return np.array([getattr(c, attr)[index[it]] for it in common])

    return Curve(np.array(common), *(np.mean([pick(c, a) for c in curves], axis=0)
                                     for a in ("mean", "std", "bytes", "paper_bytes")))


def _caption_runs(pairs: list[tuple[str, Cell]]) -> str:
    def label(cell: Cell) -> str:
        seeds = [r.seed for r, _ in _curve_runs(cell)]
        if len(seeds) == len(cell.runs):
            return cell.label
        named = ", ".join(str(s) for s in seeds)
        return (f"{cell.label} (the curve: seed{'s' if len(seeds) > 1 else ''} {named}, "
                f"evaluated more often than the others)")
    return "; ".join(f"{row}: {label(cell)}" for row, cell in pairs)


def plot_acc_vs_iter(fig: Figure, pairs: list[tuple[str, Cell]], path: Path) -> Plot:
    """Mean test accuracy over agents against iterations, shaded ± one sd over agents."""
    import matplotlib.pyplot as plt
    f, ax = plt.subplots(figsize=(7, 4.5))
    for row, cell in pairs:
        c = _mean_curve(cell)
        (line,) = ax.plot(c.iters, c.mean, marker="o", ms=3, label=row)
        ax.fill_between(c.iters, c.mean - c.std, c.mean + c.std, color=line.get_color(),
                        alpha=0.15, lw=0)
    ax.set(xlabel="iteration", ylabel="mean test accuracy over agents", title=fig.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(f, path)
    return Plot(path, f"{fig.title}. Lines: mean over agents (and over seeds where there are "
                      f"several); shading: ± one standard deviation over agents. Runs: "
                      f"{_caption_runs(pairs)}.", [r for r, _ in pairs])


def plot_acc_vs_bytes(fig: Figure, pairs: list[tuple[str, Cell]], path: Path) -> Plot:
    """Mean accuracy against cumulative bytes sent per agent: real bytes (solid) and the
    paper's accounting (dashed)."""
    import matplotlib.pyplot as plt
    f, ax = plt.subplots(figsize=(7, 4.5))
    silent = [row for row, cell in pairs if cell.runs[0].summary["bytes_sent_total"] == 0]
    ratios = []
    for row, cell in pairs:
        if row in silent:
            continue
        c = _mean_curve(cell)
        if len(c.bytes) and c.paper_bytes[-1] > 0:
            ratios.append(f"{row} {c.bytes[-1] / c.paper_bytes[-1]:.4f}")
        keep = c.bytes > 0
        (line,) = ax.plot(c.bytes[keep], c.mean[keep], marker="o", ms=3, label=f"{row} (real)")
        keep = c.paper_bytes > 0
        ax.plot(c.paper_bytes[keep], c.mean[keep], ls="--", color=line.get_color(), lw=1,
                label=f"{row} (paper-style)")
    ax.set_xscale("log")
    ax.set(xlabel="bytes sent per agent (cumulative)", ylabel="mean test accuracy over agents",
           title=fig.title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    _save(f, path)
    return Plot(path, f"{fig.title}. Solid: bytes really handed to the transport (headers "
                      f"included); dashed: the paper's accounting (1 bit per mask entry, 32 "
                      f"per real value); real over paper-style bytes at the end: "
                      f"{', '.join(ratios)} (where near 1 the lines coincide). "
                      f"Runs: {_caption_runs(pairs)}."
                + (f" Not shown (they send nothing): {', '.join(silent)}." if silent else ""),
                [r for r, _ in pairs if r not in silent])


def conv1_panel(weights: np.ndarray, mask: np.ndarray, first: int, count: int) -> np.ndarray:
    """conv1's w * m for filters first..first+count as one image: a row of 5x5 kernels per
    input channel, a column per output filter, NaN gaps between kernels."""
    learned = (weights * mask)[first:first + count]  # (count, in, k, k)
    count, channels, k, _ = learned.shape
    img = np.full((channels * (k + 1) - 1, count * (k + 1) - 1), np.nan)
    for o in range(count):
        for c in range(channels):
            img[c * (k + 1):c * (k + 1) + k, o * (k + 1):o * (k + 1) + k] = learned[o, c]
    return img


def _mask_run(fig: Figure, cell: Cell) -> Run:
    """The run whose masks a masks figure shows: the figure's seed, else the first."""
    return next((r for r in cell.runs if r.seed == fig.seed), cell.runs[0])


def plot_masks(fig: Figure, pairs: list[tuple[str, Cell]], path: Path) -> Plot:
    """Figs. 8/9: conv1's learned model w * m of some agents, as in the paper."""
    import matplotlib.pyplot as plt
    row, cell = pairs[0]
    run = _mask_run(fig, cell)
    cfg = load_config(run.dir / "config.yaml")
    w = network_for(cfg).weights[0].numpy()
    first, count = fig.filters
    agents = [a for a in fig.agents if a <= cfg.agents.num]
    f, axes = plt.subplots(len(agents), 1, figsize=(9, 1.6 * len(agents) + 0.6),
                           squeeze=False)
    axes = axes[:, 0]
    vmax = float(np.abs(w[first:first + count]).max())
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    masks = conv1_masks(run.dir)
    for ax, agent in zip(axes, agents):
        mask = masks[agent - 1].astype(np.float64)
        img = conv1_panel(w, mask, first, count)
        ax.imshow(img, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        shown = mask[first:first + count]
        alive = int((shown.reshape(count, -1).sum(axis=1) > 0).sum())
        ax.set_title(f"agent {agent} (r = {cfg.agents.ratio(agent - 1):g}): "
                     f"{100 * mask.mean():.0f}% of conv1 kept, {alive} of {count} filters "
                     f"shown non-zero", fontsize=9)
        ax.set_yticks([2 + 6 * c for c in range(mask.shape[1])],
                      [f"in {c + 1}" for c in range(mask.shape[1])], fontsize=7)
        ax.set_xticks([2 + 6 * o for o in range(count)],
                      [str(first + o + 1) for o in range(count)], fontsize=6)
    axes[-1].set_xlabel("output filter")
    f.suptitle(fig.title, fontsize=10)
    _save(f, path)
    return Plot(path, f"{fig.title}. Each square is a 5x5 kernel of w * m (white: masked out, "
                      f"red/blue: kept positive/negative weights); rows are the 3 input "
                      f"channels, columns conv1 filters {first + 1}-{first + count}. Run: "
                      f"{run.dir.name} ({run.label}).", [row])


def _save(f: Any, path: Path) -> None:
    import matplotlib.pyplot as plt
    f.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    f.savefig(tmp, dpi=130)
    plt.close(f)
    tmp.replace(path)


PLOTTERS = {"acc_vs_iter": plot_acc_vs_iter, "acc_vs_bytes": plot_acc_vs_bytes,
            "masks": plot_masks}


def draw(fig: Figure, found: CellIndex, out: Path) -> Plot | str:
    """One figure of a sweep, from the cells shown in its table, or why it cannot be drawn."""
    pairs = _figure_runs(fig, found)
    if not pairs:
        return "no run yet"
    if fig.kind == "masks":
        shown = _mask_run(fig, pairs[0][1]).dir
        pairs = [(r, c) for r, c in pairs if has_masks(_mask_run(fig, c).dir)]
        if not pairs:
            earlier = out / f"{fig.id}.png"
            return (f"the run shown ({shown.parent.name}/{shown.name}) has no masks here "
                    f"(reports before 2026-11-29 kept none: rerun it to draw this figure)"
                    + (f"; the picture an earlier report drew from it: [{earlier.name}]"
                       f"({earlier.name})" if earlier.is_file() else ""))
    return PLOTTERS[fig.kind](fig, pairs, out / f"{fig.id}.png")
