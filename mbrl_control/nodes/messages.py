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

from mbrl_control.data.joints import select_joints


def joint_state_to_arrays(msg: JointState, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities [len(joint_names)] of ``joint_names`` from ``msg``.

    Raises:
        ValueError: see :func:`mbrl_control.data.joints.select_joints`.
    """
    return select_joints(msg.name, msg.position, msg.velocity, joint_names)


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
