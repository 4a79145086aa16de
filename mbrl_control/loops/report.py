"""What a training run leaves behind: per-episode CSV and JSON, a learning-curve PNG, the
final model checkpoint and the collected transitions. Every file is written atomically."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

from mbrl_control.checkpoint import atomic_write, write_text
from mbrl_control.loops.mbrl import MBRLResult

FIELDS = ("index", "phase", "episode_return", "length", "success", "final_distance", "planning_hz", "fit_seconds")


def write_report(result: MBRLResult, out: str | Path, meta: dict[str, Any]) -> list[Path]:
    """Write ``episodes.csv``, ``episodes.json`` (with ``meta``), ``learning_curve.png``,
    ``model.pt`` and ``transitions.npz`` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.asdict(e) for e in result.episodes]

    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    paths = [write_text(out / "episodes.csv", table.getvalue())]
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()} for row in rows]
    document = {**meta, "mpc": result.controller.config.to_dict(), "model_config": result.model.config.to_dict(),
                "episodes": clean}
    paths.append(write_text(out / "episodes.json", json.dumps(document, indent=2)))
    paths.append(plot_learning_curve(result, out / "learning_curve.png", title=str(meta.get("env", ""))))
    paths.append(result.model.save(out / "model.pt"))
    paths.append(result.dataset.save(out / "transitions.npz"))
    return paths


def plot_learning_curve(result: MBRLResult, path: Path, title: str = "") -> Path:
    """Return per episode, and final distance to the goal where the env reports one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = result.episodes
    has_distance = any(e.final_distance is not None for e in episodes)
    fig, axes = plt.subplots(1, 2 if has_distance else 1, figsize=(10 if has_distance else 5, 3.6), squeeze=False)
    ax = axes[0, 0]
    for phase, marker in (("seed", "s"), ("mpc", "o")):
        points = [(e.index, e.episode_return) for e in episodes if e.phase == phase]
        if points:
            ax.plot(*zip(*points), marker, label="random (seed)" if phase == "seed" else "MPC")
    ax.plot([e.index for e in episodes], result.episode_returns, "-", color="gray", alpha=0.5)
    ax.set(xlabel="episode", ylabel="return", title=f"{title} return".strip())
    ax.legend()
    if has_distance:
        ax = axes[0, 1]
        index = [e.index for e in episodes if e.final_distance is not None]
        distance = [e.final_distance for e in episodes if e.final_distance is not None]
        ax.semilogy(index, distance, "o-")
        reached = [(e.index, e.final_distance) for e in episodes if e.success]
        if reached:
            ax.semilogy(*zip(*reached), "*", markersize=12, label="success")
            ax.legend()
        ax.set(xlabel="episode", ylabel="final distance (m)", title="distance to goal at episode end")
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=100)

    try:
        return atomic_write(path, save)
    finally:
        plt.close(fig)

