"""The node graph, described once: launch files build their ``Node`` actions from it and
``mbrl-control bringup`` runs the same nodes in one process.

Without rclpy imports, so a launch file can read it on any machine.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from mbrl_control.resources import share_dir


@dataclass(frozen=True)
class NodeSpec:
    """One node: its name (also its executable's, see setup.py) and its class."""

    name: str
    target: str  # "module:Class"

    @property
    def executable(self) -> str:
        return self.name

    def node_class(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


NODES = {spec.name: spec for spec in (
    NodeSpec("sim_node", "mbrl_control.nodes.sim_node:SimNode"),
    NodeSpec("data_collector", "mbrl_control.nodes.data_collector:DataCollectorNode"),
    NodeSpec("dynamics_learner", "mbrl_control.nodes.dynamics_learner:DynamicsLearnerNode"),
    NodeSpec("mpc_planner", "mbrl_control.nodes.mpc_planner:MPCPlannerNode"),
    NodeSpec("pg_trainer", "mbrl_control.nodes.pg_trainer:PolicyTrainerNode"),
    NodeSpec("policy_controller", "mbrl_control.nodes.policy_controller:PolicyControllerNode"),
    NodeSpec("servo_driver", "mbrl_control.nodes.servo_driver:ServoDriverNode"),
    NodeSpec("emulated_arm", "mbrl_control.nodes.emulated_arm:EmulatedArmNode"),
    NodeSpec("episode_monitor", "mbrl_control.nodes.monitor:EpisodeMonitor"),
)}
CONTROLLERS = ("mpc_planner", "policy_controller")  # the nodes that command the arm
# the node the launch files add beside the controller, to log each episode (`mbrl-control bringup`
# runs its own, which also plots them)
MONITOR = NODES["episode_monitor"]


@dataclass(frozen=True)
class Graph:
    """The nodes of one set-up, its parameter file (in ``config/``) and whether the nodes
    follow the simulator's ``/clock``."""

    nodes: tuple[str, ...]
    params: str
    use_sim_time: bool

    @property
    def params_file(self) -> str:
        return str(share_dir() / "config" / self.params)

    def specs(self) -> list[NodeSpec]:
        return [NODES[name] for name in self.nodes]

    @property
    def controlled(self) -> bool:
        """Whether the arm's controller is among the nodes (where the episode monitor goes)."""
        return any(name in self.nodes for name in CONTROLLERS)

    def only(self, names: str | list[str]) -> "Graph":
        """The part of this graph that runs on one computer: ``names`` of its nodes (a
        comma-separated string or a list; empty: all of them). The learner on a
        workstation with ``dynamics_learner``, the rest next to the arm; DDS joins them.

        Raises:
            ValueError: a name that is not a node of this graph.
        """
        names = [n for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
        unknown = [n for n in names if n.strip() not in self.nodes]
        if unknown:
            raise ValueError(f"nodes {unknown} are not in this graph ({', '.join(self.nodes)})")
        chosen = {n.strip() for n in names}
        return Graph(tuple(n for n in self.nodes if n in chosen), self.params, self.use_sim_time) if chosen else self


GRAPHS = {
    # the simulated arm learning: MuJoCo, recording, model fitting, MPC
    "sim": Graph(("sim_node", "data_collector", "dynamics_learner", "mpc_planner"), "sim.yaml", True),
    # a real arm: its driver and controllers provide joint_states and take the commands
    "real": Graph(("data_collector", "dynamics_learner", "mpc_planner"), "real.yaml", False),
    # a real arm on a Feetech bus (SO-100/SO-101): servo_driver is its driver
    "real_feetech": Graph(("servo_driver", "data_collector", "dynamics_learner", "mpc_planner"), "real.yaml", False),
    # the real-arm path without hardware: the simulated arm behind an emulated Feetech bus
    "emulated": Graph(("emulated_arm", "servo_driver", "data_collector", "dynamics_learner", "mpc_planner"), "emulated.yaml", False),
    # a trained policy (policy_controller's policy_path) driving the simulated arm
    "sim_policy": Graph(("sim_node", "data_collector", "policy_controller"), "sim.yaml", True),
    # a policy learnt through the model (pg_trainer's method): it drives the arm, explores
    # until its first version, and improves as data and models arrive
    "sim_pg": Graph(("sim_node", "data_collector", "dynamics_learner", "pg_trainer", "policy_controller"), "sim.yaml", True),
}

# Topics ROS 2 keeps absolute (a node's namespace leaves them alone): a namespaced graph
# moves them into its namespace, so that two simulated arms in one domain keep their own
# clocks and reports (see namespace_remappings).
ABSOLUTE_TOPICS = ("/clock", "/diagnostics")


def namespace_remappings(namespace: str) -> list[tuple[str, str]]:
    """``[("/clock", "/arm1/clock"), ("/diagnostics", "/arm1/diagnostics")]`` for namespace
    ``arm1``: remappings for every node of a graph in ``namespace``; none without one."""
    namespace = namespace.strip("/")
    return [(topic, f"/{namespace}{topic}") for topic in ABSOLUTE_TOPICS] if namespace else []


# what offline fitting needs, for `ros2 bag record` (launch/record.launch.py)
RECORD_TOPICS = ("/joint_states", "/arm_controller/commands", "/mbrl/target")
