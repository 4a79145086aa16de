"""The arm: URDF description, MuJoCo model and simulator, the reaching task and its
gymnasium environment."""

import os

# Offscreen rendering needs no display: MuJoCo reads MUJOCO_GL when it is first imported,
# which is under this package.
os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] == "osmesa":
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
