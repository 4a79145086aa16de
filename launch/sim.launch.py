"""The simulated arm learning to reach: MuJoCo sim, data collector, dynamics learner and
MPC planner (the graph ``sim`` of mbrl_control/nodes/graph.py; `mbrl-control bringup sim`
runs the same nodes without launch), and, beside the arm's controller, the episode
monitor, which logs each episode's final distance and the recent success rate. With a namespace, /clock and /diagnostics move
into it too: two simulated arms can share a domain.

    ros2 launch mbrl_control sim.launch.py
    ros2 launch mbrl_control sim.launch.py model:=gp optimizer:=mppi namespace:=arm1
    ros2 launch mbrl_control sim.launch.py graph:=sim_policy params_file:=my_policy.yaml   # policy_path set there
    ros2 launch mbrl_control sim.launch.py graph:=sim_pg method:=dagger
    ros2 launch mbrl_control sim.launch.py nodes:=dynamics_learner   # on a workstation: the learner
    ros2 launch mbrl_control sim.launch.py nodes:=sim_node,data_collector,mpc_planner   # next to the arm
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mbrl_control.loops.policy_methods import DEFAULT_METHOD, POLICY_METHODS
from mbrl_control.models import REGRESSORS
from mbrl_control.nodes.graph import GRAPHS, MONITOR, namespace_remappings
from mbrl_control.planning import OPTIMIZERS


def _nodes(context):
    graph = GRAPHS[LaunchConfiguration("graph").perform(context)].only(LaunchConfiguration("nodes").perform(context))
    params = LaunchConfiguration("params_file").perform(context) or str(Path(get_package_share_directory("mbrl_control")) / "config" / graph.params)
    namespace = LaunchConfiguration("namespace").perform(context)
    chosen = {
        "dynamics_learner": {"model.type": LaunchConfiguration("model").perform(context)},
        "mpc_planner": {"optimizer.type": LaunchConfiguration("optimizer").perform(context)},
        "pg_trainer": {"method.type": LaunchConfiguration("method").perform(context)},
    }
    return [
        Node(
            package="mbrl_control", executable=spec.executable, name=spec.name, namespace=namespace, output="screen",
            parameters=[params, {"use_sim_time": graph.use_sim_time, **chosen.get(spec.name, {})}],
            remappings=namespace_remappings(namespace),
        )
        for spec in (*graph.specs(), *([MONITOR] if graph.controlled else []))
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("graph", default_value="sim", choices=["sim", "sim_policy", "sim_pg"],
                              description="node graph: MPC learning, a trained policy (policy_controller's policy_path), or a policy learnt through the model (pg_trainer)"),
        DeclareLaunchArgument("model", default_value="ensemble", choices=list(REGRESSORS),
                              description="dynamics model type"),
        DeclareLaunchArgument("optimizer", default_value="cem", choices=list(OPTIMIZERS),
                              description="MPC trajectory optimiser"),
        DeclareLaunchArgument("method", default_value=DEFAULT_METHOD, choices=list(POLICY_METHODS),
                              description="graph sim_pg: how pg_trainer's policy learns through the model"),
        DeclareLaunchArgument("params_file", default_value="", description="ROS parameter file (default: config/sim.yaml)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node and topic"),
        DeclareLaunchArgument("nodes", default_value="", description="only these nodes of the graph (comma-separated): the part on this computer"),
        OpaqueFunction(function=_nodes),
    ])
