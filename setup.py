"""hand_mesh_ros: one ament_python package installing hand_mesh_core and hand_mesh_ros."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "hand_mesh_ros"
os.chdir(os.path.dirname(os.path.abspath(__file__)))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["hand_mesh_core", "hand_mesh_core.*",
                                    "hand_mesh_ros", "hand_mesh_ros.*"]),
    package_data={"hand_mesh_core": ["assets/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")
         + glob("config/*.rviz")),
    ] + [(f"share/{PACKAGE}/{d}", glob(f"{d}/*.yaml"))
         for d in sorted({os.path.dirname(p) for p in glob("config/*/*.yaml")})],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24", "scipy>=1.10", "torch>=2.1", "kornia>=0.7", "pyyaml>=6",
        "safetensors>=0.4", "tqdm>=4.60", "matplotlib>=3.6", "opencv-python-headless>=4.8",
        "open3d-cpu>=0.18; platform_machine=='x86_64'",
        "open3d>=0.18; platform_machine!='x86_64'",
        "rosbags>=0.10",
    ],
    extras_require={
        "ros": ["ros-rclpy", "ros-sensor-msgs", "ros-visualization-msgs", "ros-geometry-msgs",
                "ros-std-msgs", "ros-std-srvs", "ros-diagnostic-msgs", "ros-stereo-msgs",
                "ros-rmw-fastrtps-cpp"],
        "test": ["pytest>=7", "pytest-timeout>=2", "flake8>=6"],
        "dev": ["pytest>=7", "pytest-timeout>=2", "flake8>=6"],
    },
    zip_safe=True,
    maintainer="hand_mesh developers",
    maintainer_email="hand-mesh@example.invalid",
    description="Absolute 3D hand mesh recovery from rectified stereo, with ROS 2 nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "hand-mesh = hand_mesh_core.cli.main:main",
            "stereo_node = hand_mesh_ros.stereo_node:main",
            "recorder_node = hand_mesh_ros.recorder_node:main",
        ],
    },
)
