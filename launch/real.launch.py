"""A real arm: its driver publishes /joint_states and executes /arm_controller/commands;
this adds robot_state_publisher with the URDF, the data collector, the dynamics learner
and the MPC planner (the graphs ``real``, ``real_feetech`` and ``emulated`` of
mbrl_control/nodes/graph.py), and the episode monitor, which logs each episode (a target
change on /mbrl/target ends one).

The driver is ``driver:=none`` (default: ros2_control's, a forward_command_controller with
the position interface, already running), ``driver:=feetech`` (servo_driver on a Feetech
bus: an SO-100/SO-101 on its USB adapter, with its calibration file) or
``driver:=emulated`` (the same servo_driver against an emulated bus: no hardware).

    ros2 launch mbrl_control real.launch.py dry_run:=true     # commands go to a shadow topic
    ros2 launch mbrl_control real.launch.py commands:=/my_arm/position_controller/commands \\
        joint_states:=/my_arm/joint_states model:=gp params_file:=my_arm.yaml
    ros2 launch mbrl_control real.launch.py driver:=feetech port:=/dev/ttyACM0 \\
        calibration:=$HOME/.cache/huggingface/lerobot/calibration/robots/so101_follower/my_arm.json \\
        urdf:=so101_new_calib.urdf ee_link:=gripper_frame_link

With ``dry_run:=true`` the planner publishes on ``<commands>_dry_run`` instead: watch what it
would send (``ros2 topic echo``) before the arm moves. Targets come from whoever publishes
/mbrl/target (geometry_msgs/PointStamped, base frame).
"""

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mbrl_control.models import REGRESSORS
from mbrl_control.nodes.graph import GRAPHS, MONITOR, namespace_remappings


GRAPH_OF_DRIVER = {"none": "real", "feetech": "real_feetech", "emulated": "emulated"}


def _nodes(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    driver = value("driver")
    graph = GRAPHS[GRAPH_OF_DRIVER[driver]]
    share = Path(get_package_share_directory("mbrl_control"))
    params = value("params_file") or str(share / "config" / graph.params)
    urdf = value("urdf") or str(share / "urdf" / "so_arm5.urdf")
    commands = value("commands")
    planner_commands = commands + "_dry_run" if value("dry_run").lower() == "true" else commands
    remap = {"joint_states": value("joint_states"), "arm_controller/commands": commands}
    chosen = {"dynamics_learner": {"model.type": value("model")}}
    arm = {"urdf": urdf, "ee_link": value("ee_link")}
    if driver != "none":
        calibration = value("calibration")
        if driver == "emulated" and not calibration:  # the emulated arm as ideally assembled
            import tempfile

            from mbrl_control.arm.description import load_description
            from mbrl_control.feetech.calibration import calibration_for

            folder = Path(tempfile.mkdtemp(prefix="mbrl_control_emulated_"))
            calibration = str(calibration_for(load_description(urdf, arm["ee_link"])).save(folder / "calibration.json"))
        if not calibration:
            raise RuntimeError("driver:=feetech needs calibration:=FILE (LeRobot's, or mbrl-control calibrate's)")
        port = value("port")
        if driver == "emulated" and not port:  # the driver opens where the emulated arm links its bus
            from mbrl_control.nodes.emulated_arm import EmulatedArmConfig

            port = EmulatedArmConfig().port
        bus = {"calibration": calibration, **({"port": port} if port else {})}
        chosen["servo_driver"] = chosen["emulated_arm"] = bus
    nodes = _state_publisher(value("state_publisher"), urdf, value("namespace"), remap["joint_states"])
    for spec in (*graph.specs(), *([MONITOR] if graph.controlled else [])):
        remappings = {**remap, **dict(namespace_remappings(value("namespace")))}
        if spec.name == "mpc_planner":
            remappings["arm_controller/commands"] = planner_commands
        nodes.append(Node(
            package="mbrl_control", executable=spec.executable, name=spec.name, namespace=value("namespace"),
            output="screen", parameters=[params, {"use_sim_time": graph.use_sim_time, **arm, **chosen.get(spec.name, {})}],
            remappings=list(remappings.items()),
        ))
    return nodes


def _state_publisher(choice: str, urdf: str, namespace: str, joint_states: str) -> list:
    """robot_state_publisher with the URDF: ``true`` starts it, ``false`` leaves it to the
    arm's own bringup, ``auto`` starts it where it is installed and says so where not."""
    if choice == "false":
        return []
    try:
        get_package_share_directory("robot_state_publisher")
    except PackageNotFoundError:
        if choice == "true":
            raise RuntimeError("state_publisher:=true, but robot_state_publisher is not installed "
                               "(apt install ros-$ROS_DISTRO-robot-state-publisher, or state_publisher:=false)") from None
        return [LogInfo(msg="robot_state_publisher is not installed: not started (TF comes from the arm's own bringup, "
                            "if it starts one; state_publisher:=false silences this)")]
    return [Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
                 namespace=namespace, output="screen", parameters=[{"robot_description": Path(urdf).read_text()}],
                 remappings=[("joint_states", joint_states)])]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("model", default_value="gp", choices=list(REGRESSORS),
                              description="dynamics model type (a GP learns from the fewest trials)"),
        DeclareLaunchArgument("params_file", default_value="", description="ROS parameter file (default: config/real.yaml)"),
        DeclareLaunchArgument("driver", default_value="none", choices=list(GRAPH_OF_DRIVER),
                              description="the arm's driver: none (ros2_control's runs already), feetech (servo_driver), emulated (no hardware)"),
        DeclareLaunchArgument("port", default_value="", description="feetech: the bus adapter's serial port (default: /dev/ttyACM0)"),
        DeclareLaunchArgument("calibration", default_value="", description="feetech: the servos' calibration file (LeRobot's JSON, or mbrl-control calibrate's)"),
        DeclareLaunchArgument("urdf", default_value="", description="the arm's URDF (default: the packaged so_arm5.urdf)"),
        DeclareLaunchArgument("ee_link", default_value="tcp", description="the URDF link of the tool centre point (SO-101: gripper_frame_link)"),
        DeclareLaunchArgument("joint_states", default_value="/joint_states", description="the driver's joint state topic"),
        DeclareLaunchArgument("commands", default_value="/arm_controller/commands",
                              description="the position forward-command controller's topic"),
        DeclareLaunchArgument("dry_run", default_value="false", choices=["true", "false"],
                              description="publish the planner's commands on <commands>_dry_run instead"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node"),
        DeclareLaunchArgument("state_publisher", default_value="auto", choices=["auto", "true", "false"],
                              description="robot_state_publisher with the URDF: auto starts it where installed; "
                                          "false where the arm's own bringup runs one"),
        OpaqueFunction(function=_nodes),
    ])
