"""Record what offline fitting needs (`mbrl-control fit --bag`): joint states, commands and
targets, with `ros2 bag record` in mcap.

    ros2 launch mbrl_control record.launch.py bag:=runs/bags/session1

The launch fails (exit code 1, one line saying why) where `ros2 bag` is not installed, or
where the recorder dies or stops without writing its bag; Ctrl-C ends the recording and
keeps the bag.
"""

import importlib.util
import shutil
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration

from mbrl_control.nodes.graph import RECORD_TOPICS


def _recorder(context):
    bag = Path(LaunchConfiguration("bag").perform(context))
    if shutil.which("ros2") is None or importlib.util.find_spec("ros2bag") is None:
        raise RuntimeError("record.launch.py: `ros2 bag` is not installed, so nothing is recorded "
                           "(apt install ros-$ROS_DISTRO-ros2bag ros-$ROS_DISTRO-rosbag2-storage-mcap)")
    record = ExecuteProcess(cmd=["ros2", "bag", "record", "--storage", "mcap", "--output", str(bag), *RECORD_TOPICS],
                            output="screen", name="ros2_bag_record")

    def exited(event, context):
        if not (bag / "metadata.yaml").is_file():
            raise RuntimeError(f"record.launch.py: `ros2 bag record` exited with code {event.returncode} "
                               f"and wrote no bag at {bag} (see its output above)")
        if event.returncode != 0 and not context.is_shutdown:
            raise RuntimeError(f"record.launch.py: `ros2 bag record` died with code {event.returncode}; "
                               f"what it recorded until then is in {bag}")

    return [record, RegisterEventHandler(OnProcessExit(target_action=record, on_exit=exited))]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("bag", default_value="mbrl_bag", description="output bag folder (must not exist)"),
        OpaqueFunction(function=_recorder),
    ])
