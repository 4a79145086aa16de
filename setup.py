"""ament_python package: ``colcon build`` on a ROS 2 install, or ``pip install -e .``.

Python dependencies live in requirements.txt (pinned) and package.xml (rosdep keys);
install_requires stays minimal as ROS 2 packages expect.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mbrl_control"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/urdf", glob("urdf/*.urdf")),
    ],
    install_requires=["setuptools"],
    # the peers benchmarks/ compares against, side by side (pip install -e .[bench])
    extras_require={"bench": ["stable-baselines3==2.9.2", "sb3-contrib==2.9.2"]},
    zip_safe=True,
    maintainer="mbrl_control maintainers",
    maintainer_email="maintainers@mbrl-control.dev",
    description="Model-based reinforcement learning for low-cost robot arms with ROS 2.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "mbrl-control = mbrl_control.cli:main",
            # the nodes, for `ros2 run mbrl_control <node>` and the launch files (see nodes/graph.py)
            "sim_node = mbrl_control.nodes.sim_node:main",
            "data_collector = mbrl_control.nodes.data_collector:main",
            "dynamics_learner = mbrl_control.nodes.dynamics_learner:main",
            "mpc_planner = mbrl_control.nodes.mpc_planner:main",
            "pg_trainer = mbrl_control.nodes.pg_trainer:main",
            "policy_controller = mbrl_control.nodes.policy_controller:main",
            "servo_driver = mbrl_control.nodes.servo_driver:main",
            "emulated_arm = mbrl_control.nodes.emulated_arm:main",
            "episode_monitor = mbrl_control.nodes.monitor:main",
        ],
    },
)
