#!/usr/bin/env bash
# Install ROS 2's launch system and command-line tools (upstream sources in ../shared/vendor/ros2,
# no PyPI wheels exist) into a virtual environment made by scripts/setup_env.sh, and register
# this checkout in that environment's ament index, so that `.venv/bin/ros2 launch hybrid_pose_ros
# hybrid.launch.py` runs the checkout's launch files, nodes and sample bag with nothing sourced.
# A development and test tool: the package itself never needs ../shared.
# Usage: ros_tools.sh [--if-available]   (--if-available: exit 0 with a note when the sources are
# absent). Idempotent: a second run with nothing changed returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}   # .venv-jazzy for the Jazzy one (the Makefile sets it)
VENDOR=${ROS_VENDOR:-$ROOT/../shared/vendor/ros2}
STAMP="$VENV/.hybrid_pose_ros_tools_stamp"
# The vendored Python packages, in dependency order. Not ros2topic: its verbs need
# rosidl_runtime_py, which has no wheel (`ros2 topic` would fail on every verb).
PACKAGES=(launch/launch launch/launch_xml launch/launch_yaml launch/launch_testing
  launch_ros/launch_ros launch_ros/launch_testing_ros
  ros2cli/ros2cli ros2cli/ros2pkg ros2cli/ros2run ros2cli/ros2node ros2cli/ros2param
  launch_ros/ros2launch)
# Interface packages built with cmake, as scripts/setup_env.sh builds the event messages.
INTERFACES=(rcl_interfaces/composition_interfaces)
# Their PyPI dependencies (launch's osrf_pycommon, ros2cli's argcomplete; the rest are already in
# requirements/venv.txt).
PYPI=("osrf-pycommon==2.0.2" "argcomplete==3.7.2")

if [ ! -d "$VENDOR/launch" ]; then
  if [ "${1:-}" = "--if-available" ]; then
    echo "ros-tools: $VENDOR not found; tests of the real launch system will skip"
    exit 0
  fi
  echo "ros-tools: the ROS 2 launch and command-line tool sources are not at $VENDOR" >&2
  echo "ros-tools: set ROS_VENDOR to a folder holding launch/, launch_ros/, ros2cli/, rcl_interfaces/" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || { echo "ros-tools: $VENV does not exist; run make setup first" >&2; exit 1; }

fingerprint() {
  { cat scripts/ros_tools.sh scripts/ros_tools_install.py setup.py "$VENV/.hybrid_pose_setup_stamp"
    ls -R launch config rviz weights bags
    (cd "$VENDOR" && find -L . -type f -printf '%p %s %T@\n' | sort); } | sha256sum | cut -d' ' -f1
}
want=$(fingerprint)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "ros-tools: $VENV is up to date"
  exit 0
fi

# shellcheck disable=SC1091
. "$VENV/bin/activate"
quiet_pip() { python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
quiet_pip "${PYPI[@]}"
# pip builds a local folder in place: copy the read-only sources first.
BUILD="$ROOT/build/ros_tools/$(basename "$VENV")"
SRC="$BUILD/src"
rm -rf "$SRC" && mkdir -p "$SRC"
cp -r "$VENDOR"/. "$SRC"/ && chmod -R u+w "$SRC"
echo "ros-tools: installing ${#PACKAGES[@]} packages from $VENDOR into $VENV"
quiet_pip --no-deps --no-build-isolation "${PACKAGES[@]/#/$SRC/}"

source "$(dirname "${BASH_SOURCE[0]}")/build_interface.sh"
for pkg in "${INTERFACES[@]}"; do
  build_interface "$SRC/$pkg" "$BUILD/$(basename "$pkg")" ros-tools
done

# This checkout as an installed package of the venv prefix, as `colcon build --symlink-install`
# lays it out: share/ links to the checkout's launch, config, rviz, weights and sample bag files,
# lib/hybrid_pose_ros/ to the console scripts (where `ros2 run` and launch_ros look).
python scripts/ros_tools_install.py "$VENV"
python - <<'EOF'
import launch, launch_ros.actions, launch_testing, composition_interfaces.srv, ros2cli  # noqa
from ament_index_python.packages import get_package_share_directory
get_package_share_directory('hybrid_pose_ros')
EOF
"$VENV/bin/ros2" pkg executables hybrid_pose_ros >/dev/null
echo "$want" > "$STAMP"
echo "ros-tools: done ($VENV/bin/ros2)"
