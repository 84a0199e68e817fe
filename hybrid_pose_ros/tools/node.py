"""
The ``hybrid_pose_node`` and ``hybrid_pose_3d_node`` commands: options, ``--help``, Ctrl-C.

Nothing heavy is imported before the options are read, so ``--help`` answers at once without
starting ROS. Ctrl-C during start-up (imports, model loading, warm-up) ends the process at once
with one line and status 130: a KeyboardInterrupt there can land in an import-lock callback,
where Python ignores it and the node would start anyway. Once the node spins, Ctrl-C shuts it
down cleanly (status 0).
"""
import os
import signal
import sys

NODE_USAGE = """usage: hybrid_pose_node [-h] [--lifecycle] [--ros-args ...]

Human pose (13 DHP19 joints) from event-camera messages with the hybrid ANN-SNN model.

options:
  -h, --help    show this help and exit (ROS is not started)
  --lifecycle   run as a managed (lifecycle) node: it waits unconfigured; configure loads
                and warms up the model, activate subscribes and publishes
                (ros2 lifecycle set /hybrid_pose_node configure, then activate)

ROS arguments follow --ros-args, for example:
  hybrid_pose_node --ros-args -r events:=/event_camera/events -p input_type:=event_packet
  hybrid_pose_node --ros-args --params-file config/hybrid.yaml -r __ns:=/cam0

Input: the relative topic `events` (remap it, or set the parameter events_topic) of
event_camera_msgs/EventPacket (input_type event_packet) or dvs_msgs/EventArray (input_type dvs).
Outputs: ~/pose (geometry_msgs/PoseArray), ~/skeleton (visualization_msgs/MarkerArray),
~/debug_image and ~/debug_image/compressed, /diagnostics.
Parameters: docs/parameters.md. A bad value stops the node with one message and status 2.
"""

NODE_3D_USAGE = """usage: hybrid_pose_3d_node [-h] [--ros-args ...]

Triangulates the ~/pose of two or more hybrid_pose_node cameras into one 3D pose.

options:
  -h, --help    show this help and exit (ROS is not started)

ROS arguments follow --ros-args, for example:
  hybrid_pose_3d_node --ros-args --params-file config/multi_camera.yaml
Calibration: calibration_files (YAML or DHP19 P*.npy), or camera_info_topics
(sensor_msgs/CameraInfo) with the camera poses from TF. Outputs: ~/pose_3d, ~/skeleton_3d,
/diagnostics. Parameters: docs/parameters.md.
"""

INTERRUPTED = 130
"""Exit status after Ctrl-C during start-up (128 + SIGINT), as a shell reports it."""


def exit_on_interrupt(program: str) -> None:
    """Make Ctrl-C end the process at once (start-up), with one line and status 130."""
    def interrupted(signum: int, frame: object) -> None:
        os.write(2, f'{program}: interrupted during start-up\n'.encode())
        os._exit(INTERRUPTED)
    signal.signal(signal.SIGINT, interrupted)


def interrupt_normally() -> None:
    """Let Ctrl-C raise KeyboardInterrupt again (the spin loop shuts the node down on it)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def user_arguments(argv: list[str]) -> list[str]:
    """Return the arguments before ``--ros-args`` (without the program name)."""
    args = argv[1:]
    return args[:args.index('--ros-args')] if '--ros-args' in args else args


def parse(argv: list[str], usage: str, flags: tuple[str, ...]) -> set[str]:
    """Return the flags given; print usage and exit 0 for -h/--help, 2 for an unknown option."""
    program = usage.split()[1]
    given = set()
    for arg in user_arguments(argv):
        if arg in ('-h', '--help'):
            print(usage, end='')
            sys.exit(0)
        if arg not in flags:
            print(f'{program}: unknown option {arg!r} (ROS arguments go after --ros-args; '
                  'see --help)', file=sys.stderr)
            sys.exit(2)
        given.add(arg)
    return given


def main(argv: list[str] | None = None) -> None:
    """Run ``hybrid_pose_node``."""
    argv = list(sys.argv if argv is None else argv)
    parse(argv, NODE_USAGE, ('--lifecycle',))
    exit_on_interrupt('hybrid_pose_node')
    from hybrid_pose_ros.ros.node import main as run
    run(argv)


def main_3d(argv: list[str] | None = None) -> None:
    """Run ``hybrid_pose_3d_node``."""
    argv = list(sys.argv if argv is None else argv)
    parse(argv, NODE_3D_USAGE, ())
    exit_on_interrupt('hybrid_pose_3d_node')
    from hybrid_pose_ros.ros.node_3d import main as run
    run(argv)


if __name__ == '__main__':
    main()
