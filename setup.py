"""ament_python package slarm_ros: the SLARM engine and its ROS 2 node."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "slarm_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["configs/*.yaml", "weights/*.safetensors", "weights/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="slarm_ros maintainers",
    maintainer_email="slarm-ros@example.org",
    description="Streaming SLARM perception: 4D Gaussians with motion and language features from multi-camera images.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "slarm = slarm_ros.cli:main",
            "slarm_node = slarm_ros.ros.node:main",
        ],
    },
)
