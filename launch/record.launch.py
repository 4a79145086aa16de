"""Record what offline fitting needs (`mbrl-control fit --bag`): joint states, commands and
targets, with `ros2 bag record` in mcap.

    ros2 launch mbrl_control record.launch.py bag:=runs/bags/session1
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration

from mbrl_control.nodes.graph import RECORD_TOPICS


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("bag", default_value="mbrl_bag", description="output bag folder (must not exist)"),
        ExecuteProcess(
            cmd=["ros2", "bag", "record", "--storage", "mcap", "--output", LaunchConfiguration("bag"), *RECORD_TOPICS],
            output="screen",
        ),
    ])
