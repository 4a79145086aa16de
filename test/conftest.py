"""Test-session set-up. Runs before any test module imports rclpy or mujoco.

DDS must stay on this machine (no multicast off it) and in a domain of its own, so that
concurrent test sessions and other ROS 2 users on the network never see each other.
"""

import os
import random

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 101))
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402

import mbrl_control  # noqa: E402  (registers the environment)


@pytest.fixture
def env():
    """A fresh ArmReach from the registry, closed after the test."""
    environment = gym.make(mbrl_control.ENV_ID)
    yield environment
    environment.close()


def pytest_configure(config):
    """launch_pytest's plugin where the package imports but its entry point is not installed
    (launch from a source checkout on PYTHONPATH); an installed one registers itself."""
    try:
        import launch_pytest.plugin as plugin
    except ImportError:
        return
    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "launch_pytest")
