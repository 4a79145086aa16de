"""What a policy-gradient run leaves behind: the policy checkpoint, per-update metrics and
evaluations as CSV, and a learning-curve PNG. Every file is written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mbrl_control.checkpoint import atomic_write, write_text
from mbrl_control.policies.train import PolicyResult, save_policy


def write_policy_report(result: PolicyResult, out: str | Path, title: str = "") -> list[Path]:
    """Write ``policy.pt``, ``updates.csv``, ``eval.csv`` and ``learning_curve.png`` into
    ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_policy(result, out / "policy.pt")]
    fields = sorted({key for update in result.updates for key in update}, key=lambda k: (k != "env_steps", k))
    paths.append(write_text(out / "updates.csv", _csv(fields, result.updates)))
    success = dict(result.success_curve)
    rows = [{"env_steps": steps, "eval_return": ret, "success_rate": success.get(steps, "")} for steps, ret in result.eval_curve]
    paths.append(write_text(out / "eval.csv", _csv(["env_steps", "eval_return", "success_rate"], rows)))
    paths.append(plot_policy_curve(result, out / "learning_curve.png", title))
    return paths


def plot_policy_curve(result: PolicyResult, path: Path, title: str = "") -> Path:
    """Evaluation return (and success rate, where reported) against environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if result.success_curve else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(*zip(*result.eval_curve), "o-")
    ax.set(xlabel="environment steps", ylabel="mean eval return", title=f"{title} {result.config.algo}".strip())
    if result.success_curve:
        ax = axes[0, 1]
        ax.plot(*zip(*result.success_curve), "o-")
        ax.set(xlabel="environment steps", ylabel="success rate", ylim=(-0.05, 1.05), title="deterministic policy")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)


def _csv(fields: list[str], rows: list[dict]) -> str:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return table.getvalue()
