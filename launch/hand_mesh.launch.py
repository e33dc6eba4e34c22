"""Hand mesh from a rectified stereo camera: the stereo node, optionally rviz and the recorder.

    ros2 launch hand_mesh_ros hand_mesh.launch.py camera_ns:=/stereo use_rviz:=true

The node subscribes to ``left/image_rect``, ``left/camera_info``, ``right/image_rect`` and
``right/camera_info`` inside ``camera_ns``; the ``*_topic`` arguments remap each one.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
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
                              description="ROS parameters file for hand_mesh and the recorder"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="checkpoint (.safetensors); empty: the shipped one"),
        DeclareLaunchArgument("device", default_value="cpu",
                              description="inference device: cpu or cuda"),
        DeclareLaunchArgument("handedness", default_value="auto",
                              description="hand to expect: left, right, or auto (= right "
                                          "until a handedness classifier exists)"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="start rviz2 with config/hand_mesh.rviz"),
        DeclareLaunchArgument("record", default_value="false",
                              description="also record the stereo stream to a rosbag2"),
    ]
    remaps = [("left/image_rect", LaunchConfiguration("left_image_topic")),
              ("left/camera_info", LaunchConfiguration("left_info_topic")),
              ("right/image_rect", LaunchConfiguration("right_image_topic")),
              ("right/camera_info", LaunchConfiguration("right_info_topic"))]
    params_file = LaunchConfiguration("params_file")
    stereo = Node(package=PACKAGE, executable="stereo_node", name="hand_mesh",
                  namespace=LaunchConfiguration("camera_ns"), output="screen",
                  parameters=[params_file, {"model_path": LaunchConfiguration("model_path"),
                                            "device": LaunchConfiguration("device"),
                                            "handedness": LaunchConfiguration("handedness")}],
                  remappings=remaps)
    recorder = Node(package=PACKAGE, executable="recorder_node", name="stereo_recorder",
                    namespace=LaunchConfiguration("camera_ns"), output="screen",
                    parameters=[params_file], remappings=remaps,
                    condition=IfCondition(LaunchConfiguration("record")))
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", os.path.join(share, "config", "hand_mesh.rviz")],
                condition=IfCondition(LaunchConfiguration("use_rviz")))
    return LaunchDescription(args + [stereo, recorder, rviz])
