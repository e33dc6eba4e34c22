"""Record a rectified stereo stream (images + CameraInfos) for on-site adaptation.

    ros2 launch hand_mesh_ros record.launch.py camera_ns:=/mynteye output_dir:=~/bags

Then adapt the model: ``hand-mesh adapt --bag <bag folder>`` (see adapt_from_bag.launch.py).
Stop with Ctrl-C (the bag is closed cleanly) or ``ros2 service call
/<ns>/stereo_recorder/stop std_srvs/srv/Trigger``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "hand_mesh_ros"


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    args = [
        DeclareLaunchArgument("camera_ns", default_value="camera",
                              description="namespace of the stereo camera topics"),
        DeclareLaunchArgument("left_image_topic", default_value="left/image_rect",
                              description="rectified left image (relative to camera_ns)"),
        DeclareLaunchArgument("left_info_topic", default_value="left/camera_info",
                              description="left CameraInfo (relative to camera_ns)"),
        DeclareLaunchArgument("right_image_topic", default_value="right/image_rect",
                              description="rectified right image (relative to camera_ns)"),
        DeclareLaunchArgument("right_info_topic", default_value="right/camera_info",
                              description="right CameraInfo (relative to camera_ns)"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "hand_mesh.yaml"),
                              description="ROS parameters file (stereo_recorder section)"),
        DeclareLaunchArgument("output_dir", default_value="bags",
                              description="folder receiving one bag folder per recording"),
        DeclareLaunchArgument("storage", default_value="mcap",
                              description="rosbag2 storage: mcap or sqlite3"),
        DeclareLaunchArgument("compression", default_value="png",
                              description="image storage: none, png (lossless) or jpeg"),
        DeclareLaunchArgument("only_with_hand", default_value="false",
                              description="skip frames without a skin-coloured blob"),
    ]
    recorder = Node(
        package=PACKAGE, executable="recorder_node", name="stereo_recorder",
        namespace=LaunchConfiguration("camera_ns"), output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    {"output_dir": LaunchConfiguration("output_dir"),
                     "storage": LaunchConfiguration("storage"),
                     "compression": LaunchConfiguration("compression"),
                     "only_with_hand": LaunchConfiguration("only_with_hand")}],
        remappings=[("left/image_rect", LaunchConfiguration("left_image_topic")),
                    ("left/camera_info", LaunchConfiguration("left_info_topic")),
                    ("right/image_rect", LaunchConfiguration("right_image_topic")),
                    ("right/camera_info", LaunchConfiguration("right_info_topic"))])
    return LaunchDescription(args + [recorder])
