"""A short clip of what the arm did: recorded joint positions and targets replayed in
MuJoCo's offscreen renderer (the overview camera, collision geoms hidden), written as a
GIF by imageio. ``mbrl-control bringup`` ends with one of its last episodes.

Rendering needs an OpenGL backend (``MUJOCO_GL``: egl by default, osmesa or glfw); where
none loads, :class:`RenderUnavailable` says why in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from mbrl_control.arm.sim import SimConfig


class RenderUnavailable(RuntimeError):
    """No offscreen rendering here; the message is the reason and the remedy."""

    @classmethod
    def because(cls, err: BaseException) -> "RenderUnavailable":
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return cls(f"rendering unavailable with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')}: {type(err).__name__}: {reason} "
                   "(install libegl1 for MUJOCO_GL=egl, or libosmesa6 and set MUJOCO_GL=osmesa)")


@dataclass
class EpisodeMotion:
    """One episode as recorded: measured joint positions ``positions`` [T, n] (chain order)
    and its ``target`` [3] (m)."""

    index: int
    positions: np.ndarray
    target: np.ndarray


def write_clip(
    path: str | Path,
    episodes: Sequence[EpisodeMotion],
    sim: "SimConfig | None" = None,
    control_rate: float = 20.0,
    fps: float = 10.0,
    size: tuple[int, int] = (320, 240),
) -> Path:
    """Render ``episodes`` one after another at ``fps`` (every ``control_rate / fps``-th
    recorded state; ``control_rate / fps`` times faster than real time where fps is higher)
    into a looping GIF at ``path``; returns the path.

    Raises:
        RenderUnavailable: no OpenGL backend could render.
        ValueError: nothing to render.
    """
    import imageio.v3 as iio
    import mujoco  # loads the GL backend: imported here, so that RenderUnavailable imports without one

    from mbrl_control.arm.model import CAMERA, COLLISION_GROUP
    from mbrl_control.arm.sim import ArmSim, SimConfig

    frames_per_episode = [e for e in episodes if len(e.positions)]
    if not frames_per_episode:
        raise ValueError("no recorded states to render")

    arm = ArmSim(sim or SimConfig())
    stride = max(1, round(control_rate / fps))
    width, height = size
    try:
        renderer = mujoco.Renderer(arm.model, height=height, width=width)
    except Exception as err:  # the GL backend failed to load
        raise RenderUnavailable.because(err) from err
    option = mujoco.MjvOption()
    option.geomgroup[COLLISION_GROUP] = False
    images = []
    try:
        for episode in frames_per_episode:
            for q in episode.positions[::stride]:
                arm.reset(q, episode.target)
                renderer.update_scene(arm.data, camera=CAMERA, scene_option=option)
                images.append(renderer.render().copy())
    finally:
        renderer.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(images), extension=".gif", duration=1000.0 / fps, loop=0)
    return path
