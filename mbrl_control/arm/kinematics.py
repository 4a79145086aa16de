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

    Evaluated from the tip inward on homogeneous vectors ``v = [p, 1]``, with Rodrigues'
    rotation split by its coefficients,

        xyz_j + R_j Rot(a, θ) p = cos θ · R_j (I - a aᵀ) p + sin θ · R_j [a]× p + (R_j a aᵀ p + xyz_j),

    so each actuated joint is one [.., 4] × [4, 12] product and a weighted sum of its three
    blocks, and the fixed joints are multiplied into their neighbours once, here: no 3×3
    products per row, and a few tensor operations per joint (a planner evaluates this on
    every model step).

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
        self._tip = np.array([0.0, 0.0, 0.0, 1.0])  # the tip in the frame of the joints evaluated so far
        self._joints: list[tuple[np.ndarray, int]] = []  # inward: (M [4, 12], joint index)
        held = {j.name for j in description.held_joints}
        chain = description.chain(tip_link)
        for joint in chain:
            if joint.type != "fixed" and joint.name not in names and joint.name not in held:
                raise ValueError(f"{description.path}: joint {joint.name!r} ({joint.type}) on the chain to {tip_link!r} is not an arm joint")
        if chain:
            self._tip[:3] = chain[-1].xyz  # the last joint's rotation does not move the tip's origin
        for joint in reversed(chain[:-1]):
            R = euler2mat(*joint.rpy, axes="sxyz")  # URDF rpy: R = Rz(yaw) Ry(pitch) Rx(roll)
            if joint.name in held:  # a joint held still: fixed at its hold angle
                R = R @ axangle2mat(joint.axis, description.hold_position(joint))
            if joint.type == "fixed" or joint.name in held:
                fixed = np.eye(4)  # v ← v F: p ← R p + xyz, as a row vector
                fixed[:3, :3], fixed[3, :3] = R.T, joint.xyz
                if self._joints:  # into the actuated joint outward of it, each of its blocks
                    M, i = self._joints[-1]
                    self._joints[-1] = (np.concatenate([M[:, 4 * b : 4 * b + 4] @ fixed for b in range(3)], axis=1), i)
                else:
                    self._tip = self._tip @ fixed
                continue
            a = np.array(joint.axis)
            outer = np.outer(a, a)
            cross = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
            M = np.zeros((4, 12))  # blocks: cos, sin, constant; the constant's carries xyz and the 1
            M[:3, 0:3], M[:3, 4:7], M[:3, 8:11] = (R @ (np.eye(3) - outer)).T, (R @ cross).T, (R @ outer).T
            M[3, 8:11], M[3, 11] = joint.xyz, 1.0
            self._joints.append((M, names.index(joint.name)))
        self._torch: dict[torch.dtype, tuple[torch.Tensor, list[tuple[torch.Tensor, int]]]] = {}

    def __call__(self, q: Array) -> Array:
        """Tip position [..., 3] at joint positions ``q`` [..., dof]: an ndarray (float64) for
        an ndarray, a tensor of ``q``'s dtype for a tensor."""
        if q.shape[-1] != self.dof:
            raise ValueError(f"joint positions must be [..., {self.dof}], got {list(q.shape)}")
        if isinstance(q, torch.Tensor):
            xp, (v, joints) = torch, self._torch_constants(q.dtype)
            ones = torch.ones_like(q)
        else:
            xp, v, joints, q = np, self._tip, self._joints, np.asarray(q, dtype=np.float64)
            ones = np.ones_like(q)
        coef = xp.stack([xp.cos(q), xp.sin(q), ones], -1)[..., None]  # [..., dof, 3, 1]
        for M, i in joints:
            w = (v @ M).reshape(*v.shape[:-1], 3, 4)  # the cos, sin and constant blocks
            v = (w * coef[..., i, :, :]).sum(-2)
        tip = v[..., :3]
        return tip if tip.shape[:-1] == q.shape[:-1] else xp.broadcast_to(tip, (*q.shape[:-1], 3))  # no joint moves it

    def _torch_constants(self, dtype: torch.dtype) -> tuple[torch.Tensor, list[tuple[torch.Tensor, int]]]:
        if dtype not in self._torch:
            self._torch[dtype] = (torch.as_tensor(self._tip, dtype=dtype), [(torch.as_tensor(M, dtype=dtype), i) for M, i in self._joints])
        return self._torch[dtype]
