"""Conversions between ROS messages and numpy arrays.

Joints are mapped by name: real drivers publish ``/joint_states`` in any order and may
include joints the controller does not command (a gripper). A message that cannot be
converted raises ``ValueError`` with the reason, for the node to log and drop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import JointState


def joint_state_to_arrays(msg: JointState, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities [len(joint_names)] of ``joint_names`` from ``msg``.

    Raises:
        ValueError: a requested joint is missing, names repeat, the position/velocity
            arrays do not match the names in length, or a value is NaN/inf.
    """
    names = list(msg.name)
    if len(set(names)) != len(names):
        raise ValueError(f"JointState repeats joint names: {names}")
    if len(msg.position) != len(names):
        raise ValueError(f"JointState has {len(names)} names but {len(msg.position)} positions")
    if len(msg.velocity) not in (0, len(names)):
        raise ValueError(f"JointState has {len(names)} names but {len(msg.velocity)} velocities")
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in joint_names if name not in index]
    if missing:
        raise ValueError(f"JointState lacks joint(s) {missing}; it has {names}")
    order = [index[name] for name in joint_names]
    position = np.asarray(msg.position, dtype=np.float64)[order]
    velocity = np.asarray(msg.velocity, dtype=np.float64)[order] if len(msg.velocity) else np.zeros(len(order))
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(velocity))):
        raise ValueError(f"JointState has NaN/inf values: position={position}, velocity={velocity}")
    return position, velocity


def arrays_to_joint_state(
    joint_names: Sequence[str], position: np.ndarray, velocity: np.ndarray, stamp: Time | None = None
) -> JointState:
    """A JointState for ``joint_names`` with ``position`` and ``velocity`` [n]."""
    if not len(joint_names) == len(position) == len(velocity):
        raise ValueError(
            f"{len(joint_names)} joint names but {len(position)} positions and {len(velocity)} velocities"
        )
    msg = JointState()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.name = list(joint_names)
    msg.position = [float(x) for x in position]
    msg.velocity = [float(x) for x in velocity]
    return msg
