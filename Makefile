# hybrid_pose_ros on a machine without ROS: `make test` and `make demo` set everything up.
# Every target that starts ROS processes keeps DDS on loopback in a domain of its own.
SHELL := /bin/bash
# The ROS 2 distribution: kilted (.venv) unless given on the command line, e.g.
# `make test ROS_DISTRO=jazzy` (.venv-jazzy); a sourced ROS's ROS_DISTRO is not used.
ifneq ($(origin ROS_DISTRO),command line)
ROS_DISTRO := kilted
endif
export ROS_DISTRO
VENV := $(CURDIR)/$(if $(filter kilted,$(ROS_DISTRO)),.venv,.venv-$(ROS_DISTRO))
export VENV
PYTHON := $(VENV)/bin/python
ROS_ENV := ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=$$(( RANDOM % 100 + 1 ))

.PHONY: setup ros-tools test lint demo bench mutate clean

setup:
	@bash scripts/setup_env.sh

# ROS 2's launch system and command-line tools from ../shared/vendor/ros2 (no wheels exist),
# and this checkout registered as an installed package: `.venv/bin/ros2 launch hybrid_pose_ros
# hybrid.launch.py` works with nothing sourced. `make test` adds them where the sources exist.
ros-tools: setup
	@bash scripts/ros_tools.sh

test: setup
	@bash scripts/ros_tools.sh --if-available
	$(ROS_ENV) $(PYTHON) -m pytest -q

lint: setup
	$(PYTHON) -m pytest -q -m linter

demo: setup
	$(ROS_ENV) $(PYTHON) -m hybrid_pose_ros.tools.demo --output demo_output

bench: setup
	$(ROS_ENV) $(PYTHON) -m hybrid_pose_ros.tools.bench --json bench_output/bench.json

# Mutation testing of the core (docs/mutation.md): hours on two cores, resumable; not in `test`.
# GROUPS='parameters geometry' limits it (groups: scripts/mutmut.cfg); MUTATE_RERUN=survived
# re-runs only the survivors.
mutate: setup
	$(ROS_ENV) bash scripts/mutate.sh $(GROUPS)

clean:
	rm -rf $(CURDIR)/.venv $(CURDIR)/.venv-jazzy build demo_output bench_output
