"""Self-supervised on-site adaptation from a recorded bag (runs the ``hand-mesh adapt`` CLI).

    ros2 launch hand_mesh_ros adapt_from_bag.launch.py bag:=bags/stereo_20250101_120000_000000

This is the same as the one command ``hand-mesh adapt --bag <bag folder>``; the launch file only
exists so the whole workflow (record.launch.py, then this) stays inside ``ros2 launch``.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    args = [
        DeclareLaunchArgument("bag", description="bag folder written by the recorder"),
    ]
    adapt = ExecuteProcess(
        cmd=["hand-mesh", "adapt", "--bag", LaunchConfiguration("bag")],
        output="screen")
    return LaunchDescription(args + [adapt])
