"""
Register the checkout as an installed ROS package of a virtual environment's prefix.

Used by ``scripts/ros_tools.sh``: setup.py's data_files become symbolic links into the checkout
(as ``colcon build --symlink-install`` makes them), the console scripts are linked into
``lib/hybrid_pose_ros/`` where ``ros2 run`` and launch_ros look for executables, and a ``.pth``
file puts the prefix on ``AMENT_PREFIX_PATH`` for every interpreter of the environment.
"""
import os
import pathlib
import runpy
import shutil
import sys
import sysconfig

import setuptools

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = 'hybrid_pose_ros'
PTH = f'{PACKAGE}_ament_prefix.pth'
PTH_LINE = (
    'import os, sys; p = os.environ.get("AMENT_PREFIX_PATH", ""); '
    'os.environ["AMENT_PREFIX_PATH"] = p if sys.prefix in p.split(os.pathsep) '
    'else os.pathsep.join(filter(None, [sys.prefix, p]))\n')


def link(target: pathlib.Path, name: pathlib.Path) -> None:
    """Make ``name`` a symbolic link to ``target``, replacing what was there."""
    name.parent.mkdir(parents=True, exist_ok=True)
    if name.is_symlink() or name.exists():
        name.unlink()
    name.symlink_to(target)


def setup_arguments() -> dict:
    """Return the keyword arguments that setup.py passes to ``setuptools.setup``."""
    captured: dict = {}
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    runpy.run_path(str(ROOT / 'setup.py'))
    return captured


def install(prefix: pathlib.Path) -> None:
    """Link data files and executables into ``prefix`` and add it to the ament prefix path."""
    os.chdir(ROOT)
    arguments = setup_arguments()
    shutil.rmtree(prefix / 'share' / PACKAGE, ignore_errors=True)
    for folder, files in arguments['data_files']:
        for file in files:
            link(ROOT / file, prefix / folder / pathlib.Path(file).name)
    lib = prefix / 'lib' / PACKAGE
    shutil.rmtree(lib, ignore_errors=True)
    for script in arguments['entry_points']['console_scripts']:
        name = script.split('=')[0].strip()
        link(prefix / 'bin' / name, lib / name)
    (pathlib.Path(sysconfig.get_paths()['purelib']) / PTH).write_text(PTH_LINE)


if __name__ == '__main__':
    install(pathlib.Path(sys.argv[1]).resolve())
