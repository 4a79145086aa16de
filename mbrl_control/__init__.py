"""mbrl_control: model-based reinforcement learning for low-cost robot arms.

Importing the package registers the gymnasium environment ``mbrl_control/ArmReach-v0``.
The core (arm, data, models, planning, policies, loops) never imports rclpy; the ROS 2
nodes in :mod:`mbrl_control.nodes` are thin adapters over it.
"""

import gymnasium as gym

__version__ = "0.1.0"

ENV_ID = "mbrl_control/ArmReach-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="mbrl_control.arm.env:ArmReach")

_LAZY = {"train_mbrl": "mbrl_control.loops.mbrl", "train_policy": "mbrl_control.policies.train"}


def __getattr__(name: str):
    """The heavy entry points (torch, gpytorch) load on first use, not on import."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mbrl_control' has no attribute {name!r}")


__all__ = ["ENV_ID", "__version__", "train_mbrl", "train_policy"]
