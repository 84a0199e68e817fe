# Sourced by setup_env.sh and ros_tools.sh: build one ROS interface package with cmake into the
# venv prefix, so that it imports with nothing sourced.
# Usage: build_interface SOURCE_DIR BUILD_DIR LABEL   (VENV must be set)
build_interface() {
  local src=$1 build=$2 label=$3
  mkdir -p "$build"
  echo "$label: building $(basename "$src")"
  AMENT_PREFIX_PATH="$VENV" cmake -S "$src" -B "$build" -DCMAKE_PREFIX_PATH="$VENV" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$build.log" 2>&1 \
    || { cat "$build.log"; exit 1; }
  cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 || { tail -50 "$build.log"; exit 1; }
  cmake --install "$build" >>"$build.log" 2>&1 || { tail -50 "$build.log"; exit 1; }
}
