"""Forward kinematics of the arm from its URDF, batched, for numpy and (differentiable) torch.

The pose of a link is the product of the joint transforms along the chain from the root,

    T_tip(q) = Π_j  T(xyz_j, rpy_j) · Rot(a_j, q_j)

(``Rot`` only for the actuated joints; fixed joints contribute their origin). The tip's
position is the translation of ``T_tip``. The reaching task reads the end effector through
it: a robot's end effector is computed from its encoders this way, and a dynamics model then
only has to predict the joints — the kinematics are known exactly and hold in poses no
episode has visited.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from transforms3d.axangles import axangle2mat
from transforms3d.euler import euler2mat

from mbrl_control.arm.description import ArmDescription

Array = TypeVar("Array", np.ndarray, torch.Tensor)


class ForwardKinematics:
    """Position of ``tip_link``'s origin in the root frame, ``p(q)`` [..., 3] for arm joint
    positions ``q`` [..., dof] in the description's arm-joint order.

    Evaluated from the tip inward on vectors, ``v ← xyz_j + R_j Rot(a_j, q_j) v``, with
    Rodrigues' rotation split by its coefficients,

        R_j Rot(a, θ) v = cos θ · R_j (I - a aᵀ) v + sin θ · R_j [a]× v + R_j a aᵀ v,

    so each joint is one [.., 3] × [3, 9] product and a weighted sum of its three blocks:
    no 3×3 products per row.

    Joints the description holds (``held_joints``) count as fixed at their hold angle.

    Raises:
        KeyError: the URDF has no link ``tip_link``.
        ValueError: a movable joint on the chain is not an arm joint (a prismatic or mimic
            joint), so ``q`` would not determine the tip.
    """

    def __init__(self, description: ArmDescription, tip_link: str) -> None:
        names = description.arm_joint_names
        self.dof = len(names)
        self.tip_link = tip_link
        self._steps: list[tuple[np.ndarray, np.ndarray, int]] = []  # (xyz [3], M [3, 9] or Rᵀ [3, 3], joint index | -1)
        held = {j.name for j in description.held_joints}
        for joint in description.chain(tip_link):
            if joint.type != "fixed" and joint.name not in names and joint.name not in held:
                raise ValueError(f"{description.path}: joint {joint.name!r} ({joint.type}) on the chain to {tip_link!r} is not an arm joint")
            R = euler2mat(*joint.rpy, axes="sxyz")  # URDF rpy: R = Rz(yaw) Ry(pitch) Rx(roll)
            if joint.name in held:  # a joint held still: fixed at its hold angle
                R = R @ axangle2mat(joint.axis, description.hold_position(joint))
            if joint.type == "fixed" or joint.name in held:
                self._steps.append((np.array(joint.xyz), R.T, -1))
                continue
            a = np.array(joint.axis)
            outer = np.outer(a, a)
            cross = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
            M = np.concatenate([(R @ (np.eye(3) - outer)).T, (R @ cross).T, (R @ outer).T], axis=1)
            self._steps.append((np.array(joint.xyz), M, names.index(joint.name)))
        self._torch: dict[torch.dtype, list[tuple[torch.Tensor, torch.Tensor, int]]] = {}

    def __call__(self, q: Array) -> Array:
        """Tip position [..., 3] at joint positions ``q`` [..., dof]: an ndarray (float64) for
        an ndarray, a tensor of ``q``'s dtype for a tensor."""
        if q.shape[-1] != self.dof:
            raise ValueError(f"joint positions must be [..., {self.dof}], got {list(q.shape)}")
        if isinstance(q, torch.Tensor):
            xp, steps = torch, self._torch_steps(q.dtype)
        else:
            xp, steps, q = np, self._steps, np.asarray(q, dtype=np.float64)
        cos, sin = xp.cos(q), xp.sin(q)  # [..., dof]
        # the tip's origin in the last joint's parent frame (that joint's rotation does not move it)
        v = xp.broadcast_to(steps[-1][0], (*q.shape[:-1], 3))
        for xyz, M, i in reversed(steps[:-1]):
            if i < 0:
                v = xyz + v @ M
            else:
                w = v @ M  # [..., 9]: the cos, sin and constant blocks side by side
                v = xyz + w[..., 0:3] * cos[..., i : i + 1] + w[..., 3:6] * sin[..., i : i + 1] + w[..., 6:9]
        return v

    def _torch_steps(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        if dtype not in self._torch:
            self._torch[dtype] = [(torch.as_tensor(x, dtype=dtype), torch.as_tensor(M, dtype=dtype), i) for x, M, i in self._steps]
        return self._torch[dtype]
