# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""package.xml declares every module the package and its launch files import (rosdep keys)."""
import ast
import sys
import xml.etree.ElementTree as ElementTree

from helpers import REPO_ROOT

ROSDEP_KEYS = {
    'PIL': 'python3-pil', 'h5py': 'python3-h5py', 'matplotlib': 'python3-matplotlib',
    'numba': 'python3-numba', 'numpy': 'python3-numpy', 'psutil': 'python3-psutil',
    'rosbags': 'python3-rosbags-pip', 'scipy': 'python3-scipy', 'torch': 'python3-torch',
    'tqdm': 'python3-tqdm', 'yaml': 'python3-yaml',
}
"""Python modules whose rosdep key is not their name (ROS packages are named as imported)."""
OPTIONAL = ('openvino', 'nncf', 'aedat')
"""Imported only where installed; package.xml says how to install them (no rosdep key)."""


def imported_modules() -> set[str]:
    """Return the top-level modules imported by the package and the launch files."""
    files = [*(REPO_ROOT / 'hybrid_pose_ros').rglob('*.py'), *(REPO_ROOT / 'launch').glob('*.py')]
    modules = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split('.')[0])
    return modules - set(sys.stdlib_module_names) - {'hybrid_pose_ros'}


def test_every_import_is_a_declared_dependency():
    package = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    declared = {e.text for e in package if e.tag in ('exec_depend', 'depend')}
    text = (REPO_ROOT / 'package.xml').read_text()
    missing = sorted(m for m in imported_modules() - set(OPTIONAL)
                     if ROSDEP_KEYS.get(m, m) not in declared)
    assert missing == [], f'imported but not declared in package.xml: {missing}'
    assert all(f'pip install {m}==' in text for m in OPTIONAL)
    # the bag player and the launch tools the launch files run
    assert {'ros2bag', 'rosbag2_storage_mcap', 'rviz2', 'ros2launch'} <= declared
