"""Training a network of E members on minibatches: what every neural regressor shares
(mbrl-lib's ``ModelTrainer``).

Each member sees its own bootstrap resample of the rows (drawn with replacement) when
``bootstrap`` is set, and its own shuffled minibatches; all members step together (one
loss, one optimiser). After every epoch each member is scored on the validation rows
(the squared error of its mean) and keeps its best weights so far: a member that starts to
overfit is rolled back on its own, while the others go on. Training stops after
``patience`` epochs in which no member improved, at ``max_epochs``, or at ``max_steps``
gradient steps (the bound on a fit's time as data grow).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn

from mbrl_control.models.base import FitReport, raise_if_cancelled, stop_now

# An epoch is at least this many minibatches (small datasets are passed over several
# times), so that early stopping judges real training progress with a handful of trials.
MIN_BATCHES_PER_EPOCH = 10
IMPROVEMENT = 1e-3  # relative decrease of a member's validation score that counts as better


class MemberNetwork(Protocol):
    """What :func:`train_members` needs of a network of E members."""

    members: int

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss (a scalar) on ``x`` [E, b, in], ``y`` [E, b, out]."""

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Validation score per member [E] on ``x`` [E, B, in], ``y`` [E, B, out]; lower is better."""

    def parameter_groups(self, weight_decay: float) -> list[dict]:
        """Optimiser parameter groups (which weights decay)."""


def train_members(
    network: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    max_steps: int,
    patience: int,
    bootstrap: bool,
    generator: torch.Generator,
) -> FitReport:
    """Train ``network`` (a :class:`MemberNetwork`) on ``x`` [N, in], ``y`` [N, out],
    early-stopping each member on ``x_val``, ``y_val`` (without validation rows: every
    epoch up to the limits). Leaves each member at its best validation weights, in eval mode."""
    E, N = network.members, len(x)
    optimizer = torch.optim.Adam(network.parameter_groups(weight_decay), lr=learning_rate)
    rows = torch.randint(N, (E, N), generator=generator) if bootstrap else torch.arange(N).expand(E, N)
    passes = math.ceil(MIN_BATCHES_PER_EPOCH * min(batch_size, N) / N)
    x_val_e, y_val_e = x_val.expand(E, *x_val.shape), y_val.expand(E, *y_val.shape)
    report, steps, stale = FitReport(), 0, 0
    best_score = torch.full((E,), math.inf, device=x.device)
    best_state = {name: value.clone() for name, value in network.state_dict().items()}
    for epoch in range(max_epochs):
        if stop_now(report, epoch, "epochs"):
            break
        if steps >= max_steps:
            report.notes = f"stopped at max_steps={max_steps}"
            break
        network.train()
        shuffles = torch.argsort(torch.rand(E, passes * N, generator=generator), dim=1) % N
        order = rows.gather(1, shuffles).to(x.device)  # [E, passes·N]: each member's rows, reshuffled
        losses = []
        for start in range(0, order.shape[1], batch_size):
            raise_if_cancelled()  # per step: a fit starved of CPU (a low priority, a busy computer) still stops at once
            batch = order[:, start : start + batch_size]  # [E, b]: each member its own rows
            loss = network.loss(x[batch], y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            steps += 1
            if steps >= max_steps:
                break
        report.train_loss.append(sum(losses) / len(losses))
        report.epochs = epoch + 1
        if len(x_val) == 0:
            continue
        network.eval()
        with torch.no_grad():
            score = network.score(x_val_e, y_val_e)
        report.val_loss.append(float(score.mean()))
        improved = score < best_score - IMPROVEMENT * best_score.abs().clamp_max(1e30)
        if improved.any():
            _keep_best(network, best_state, improved, bool(score.mean() < best_score.clamp_max(1e30).mean()))
            best_score = torch.where(improved, score, best_score)
            report.best_epoch, stale = epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    if len(x_val):
        network.load_state_dict(best_state)
    network.eval()
    return report


def _keep_best(network: nn.Module, best: dict[str, torch.Tensor], improved: torch.Tensor, shared_better: bool) -> None:
    """Copy the improved members' slices (tensors with a leading member dim) into ``best``;
    tensors all members share (logvar bounds) are copied when the mean score improved."""
    E = len(improved)
    for name, value in network.state_dict().items():
        if value.ndim and value.shape[0] == E:
            best[name][improved] = value[improved]
        elif shared_better or E == 1:
            best[name] = value.clone()
