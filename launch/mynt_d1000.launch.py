"""hand_mesh on a MYNT EYE stereo camera driven by its ROS wrapper.

    ros2 launch hand_mesh_ros mynt_d1000.launch.py use_rviz:=true

Topic names: the MYNT EYE wrapper documentation ("How to use ROS", MYNT-EYE-S-SDK docs, topic
list) publishes ``/mynteye/left/image_rect``, ``/mynteye/right/image_rect``,
``/mynteye/left/camera_info`` and ``/mynteye/right/camera_info``; those are the defaults here.
The D-series SDK wrapper's launch file names its rectified streams ``left_rect/image_rect`` and
``right_rect/image_rect`` under ``mynteye`` instead; for that wrapper pass e.g.
``left_image_topic:=/mynteye/left_rect/image_rect``. Check with ``ros2 topic list``.
Camera presets: config/cameras/mynt_d1000_120.yaml (the node always uses the live CameraInfo).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

PACKAGE = "hand_mesh_ros"
MYNT_NS = "/mynteye"


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    args = [
        DeclareLaunchArgument("left_image_topic", default_value=f"{MYNT_NS}/left/image_rect",
                              description="MYNT EYE rectified left image"),
        DeclareLaunchArgument("left_info_topic", default_value=f"{MYNT_NS}/left/camera_info",
                              description="MYNT EYE left CameraInfo"),
        DeclareLaunchArgument("right_image_topic", default_value=f"{MYNT_NS}/right/image_rect",
                              description="MYNT EYE rectified right image"),
        DeclareLaunchArgument("right_info_topic", default_value=f"{MYNT_NS}/right/camera_info",
                              description="MYNT EYE right CameraInfo"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="start rviz2 with config/hand_mesh.rviz"),
        DeclareLaunchArgument("record", default_value="false",
                              description="also record the stereo stream to a rosbag2"),
    ]
    names = ("left_image_topic", "left_info_topic", "right_image_topic", "right_info_topic",
             "use_rviz", "record")
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "hand_mesh.launch.py")),
        launch_arguments=[("camera_ns", "mynteye")]
        + [(n, LaunchConfiguration(n)) for n in names])
    return LaunchDescription(args + [include])
