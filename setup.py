"""ament_python package definition for hybrid_pose_ros."""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'hybrid_pose_ros'


def share(folder: str, pattern: str) -> tuple[str, list[str]]:
    """Install files matching ``folder/pattern`` into ``share/<package>/<folder>``."""
    return (os.path.join('share', PACKAGE, folder), sorted(glob(os.path.join(folder, pattern))))


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={PACKAGE: ['ros/msg/*.msg']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        share('launch', '*.launch.py'),
        share('config', '*.yaml'),
        share('rviz', '*.rviz'),
        share('weights', '*.pt'),
        share('weights', '*.json'),
        share(os.path.join('weights', 'dhp19'), '*'),
        (os.path.join('share', PACKAGE, 'data', 'sample_bag'), sorted(glob('bags/sample_bag/*'))),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='hybrid_pose_ros maintainers',
    maintainer_email='maintainers@hybrid-pose-ros.org',
    description='Hybrid ANN-SNN human pose estimation from event cameras for ROS 2.',
    license='MIT',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'hybrid_pose_node = hybrid_pose_ros.tools.node:main',
            'hybrid_pose_3d_node = hybrid_pose_ros.tools.node:main_3d',
            'hybrid_pose_model_bench = hybrid_pose_ros.tools.model_bench:main',
            'hybrid_pose_bench = hybrid_pose_ros.tools.bench:main',
            'hybrid_pose_replay = hybrid_pose_ros.ros.replay:main',
            'hybrid_pose_convert = hybrid_pose_ros.ros.convert:main',
            'hybrid_pose_generate_data = hybrid_pose_ros.tools.generate_data:main',
            'hybrid_pose_fetch_mocap = hybrid_pose_ros.tools.fetch_mocap:main',
            'hybrid_pose_train = hybrid_pose_ros.tools.train:main',
            'hybrid_pose_evaluate = hybrid_pose_ros.tools.evaluate:main',
            'hybrid_pose_calibrate = hybrid_pose_ros.tools.calibrate:main',
            'hybrid_pose_demo = hybrid_pose_ros.tools.demo:main',
            'hybrid_pose_soak = hybrid_pose_ros.tools.soak:main',
        ],
    },
)
