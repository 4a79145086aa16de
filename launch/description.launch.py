"""Publish the arm's URDF and TF with robot_state_publisher.

    ros2 launch mbrl_control description.launch.py
    ros2 launch mbrl_control description.launch.py urdf:=/path/to/my_arm.urdf

On a real arm the joint states come from its driver; in simulation from the sim node.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _robot_state_publisher(context):
    urdf = Path(LaunchConfiguration("urdf").perform(context))
    return [
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            name="robot_state_publisher",
            output="screen",
            parameters=[{
                "robot_description": urdf.read_text(),
                "use_sim_time": LaunchConfiguration("use_sim_time"),
            }],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("mbrl_control"))
    return LaunchDescription([
        DeclareLaunchArgument("urdf", default_value=str(share / "urdf" / "so_arm5.urdf"),
                              description="URDF of the arm"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="follow /clock (true in simulation)"),
        OpaqueFunction(function=_robot_state_publisher),
    ])
