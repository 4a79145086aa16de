"""Joints by name: real drivers publish joint states in any order, with extra joints."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def select_joints(
    names: Sequence[str], position: Sequence[float], velocity: Sequence[float], wanted: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities [len(wanted)] of the joints ``wanted``, in that order, from
    a joint state's ``names``, ``position`` and ``velocity`` (empty velocity reads as zero).

    Raises:
        ValueError: a wanted joint is missing, names repeat, the position/velocity arrays
            do not match the names in length, or a value is NaN/inf.
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"JointState repeats joint names: {names}")
    if len(position) != len(names):
        raise ValueError(f"JointState has {len(names)} names but {len(position)} positions")
    if len(velocity) not in (0, len(names)):
        raise ValueError(f"JointState has {len(names)} names but {len(velocity)} velocities")
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in wanted if name not in index]
    if missing:
        raise ValueError(f"JointState lacks joint(s) {missing}; it has {names}")
    order = [index[name] for name in wanted]
    q = np.asarray(position, dtype=np.float64)[order]
    qd = np.asarray(velocity, dtype=np.float64)[order] if len(velocity) else np.zeros(len(order))
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
        raise ValueError(f"JointState has NaN/inf values: position={q}, velocity={qd}")
    return q, qd
