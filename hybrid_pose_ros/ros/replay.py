"""
Replay ROS 2 bags (MCAP or sqlite3) and ROS 1 bags through rclpy without rosbag2.

This is ``hybrid_pose_replay``. Messages are read with rosbags and published as their raw CDR
bytes (no per-event Python objects), scheduled by their bag timestamps times a rate factor, or
as fast as possible with reliable, keep-all delivery so nothing is lost. With ``--clock`` the
bag time is published on ``/clock`` (for nodes with ``use_sim_time``). With
``--wait-for-subscribers SECONDS`` nothing is played, and the exit status is 1, when a topic
still lacks its subscribers after that long.

ROS 1 bags hold ROS 1 serialisation; each message is converted to CDR on the fly for the ROS 2
type of the same name, with the converter ``rosbags-convert`` (and ``hybrid_pose_convert ros1``)
uses: the ROS 2 Kilted types plus the event types are the destination, message types they lack
are copied from the bag (without its ROS 1 ``std_msgs/Header``), a ROS 1 ``Header`` loses its
``seq`` and ``time`` becomes ``builtin_interfaces/Time`` (a plain byte rewrite where the wire
formats agree, a deserialise-and-map otherwise). ``dvs_msgs/EventArray`` from the ROS 1 DAVIS
driver therefore arrives as the ROS 2 ``dvs_msgs/EventArray``.
"""
import argparse
from dataclasses import dataclass
import importlib
import signal
import sys
import time
from typing import Callable, Sequence, TYPE_CHECKING

from hybrid_pose_ros.ros.interfaces import event_typestore
from rosbags.convert.converter import generate_message_converter
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection

if TYPE_CHECKING:   # rclpy is imported where it is used: reading bags needs no ROS
    from rclpy.node import Node


SETTLE_S = 0.3
"""Pause after the subscribers appear, so both ends of each match are complete."""
ACK_TIMEOUT_S = 5.0
"""Longest wait at the end for subscribers to acknowledge what was published (reliable QoS)."""


def message_class(type_name: str) -> type:
    """Import the rclpy message class for ``pkg/msg/Name``, with a clear error if missing."""
    package, _, name = type_name.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError) as error:
        raise SystemExit(f'hybrid_pose_replay: message type {type_name} is not installed '
                         f'({error}); build or install the {package} package') from error


@dataclass
class ReplayStats:
    """What a replay did."""

    published: int = 0
    loops: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0


def replay(node: 'Node', bag: str, topics: list[str] | None = None, rate: float = 1.0,
           fast: bool = False, loop: int = 1, start_offset: float = 0.0,
           publish_clock: bool = False, remap: dict[str, str] | None = None,
           should_stop: Callable[[], bool] = lambda: False, wait_s: float = 0.0,
           min_subscribers: int = 1, duration: float | None = None,
           require_subscribers: bool = False) -> ReplayStats:
    """
    Publish the messages of ``bag`` on ``node``; return counts.

    ``loop`` is the number of passes (0 = until ``should_stop``); ``rate`` scales bag time
    (2.0 = twice as fast); ``fast`` ignores timestamps. ``remap`` maps bag topics to topics.
    Playback starts once every topic has ``min_subscribers`` subscribers or after ``wait_s``
    seconds, or with ``require_subscribers`` raises :class:`SubscriberTimeout` then;
    ``duration`` limits each pass to that many seconds of bag time.
    """
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    remap = remap or {}
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_ALL if fast else HistoryPolicy.KEEP_LAST)
    stats = ReplayStats()
    with AnyReader([_path(bag)], default_typestore=event_typestore()) as reader:
        connections = [c for c in reader.connections if not topics or c.topic in topics]
        if not connections:
            raise SystemExit(f'hybrid_pose_replay: none of the topics {topics} is in {bag}; '
                             f'it has {sorted({c.topic for c in reader.connections})}')
        to_cdr = cdr_converters(reader, connections)
        publishers = {}
        for c in connections:
            if c.topic not in publishers:
                publishers[c.topic] = node.create_publisher(
                    message_class(c.msgtype), remap.get(c.topic, c.topic), qos)
        clock_pub = None
        if publish_clock:
            from rosgraph_msgs.msg import Clock
            clock_pub = node.create_publisher(Clock, '/clock', 10)
        missing = _wait_for_subscribers(publishers, wait_s, min_subscribers)
        if missing and require_subscribers:
            raise SubscriberTimeout(
                f'hybrid_pose_replay: after {wait_s:g} s {", ".join(missing)} still had fewer '
                f'than {min_subscribers} subscriber(s); nothing was played')
        first_ns = reader.start_time + int(start_offset * 1e9)
        wall_start = time.monotonic()
        while not should_stop() and (loop == 0 or stats.loops < loop):
            pass_start = time.monotonic()
            stop_ns = None if duration is None else first_ns + int(duration * 1e9)
            for connection, bag_ns, raw in reader.messages(connections=connections,
                                                           start=first_ns, stop=stop_ns):
                if should_stop():
                    break
                if not fast:
                    due = pass_start + (bag_ns - first_ns) / 1e9 / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if clock_pub is not None:
                    clock_pub.publish(_clock(bag_ns))
                publishers[connection.topic].publish(bytes(to_cdr[connection.id](raw)))
                stats.published += 1
                stats.bag_s = (bag_ns - first_ns) / 1e9
            stats.loops += 1
        _wait_for_acks(publishers.values(), ACK_TIMEOUT_S)
        stats.wall_s = time.monotonic() - wall_start
    return stats


def cdr_converters(reader: AnyReader, connections: Sequence[Connection]
                   ) -> dict[int, Callable[[bytes], bytes]]:
    """
    Return, per connection id, a function from the bag's raw bytes to ROS 2 CDR bytes.

    ROS 2 bags are already CDR (the identity); ROS 1 messages are converted for the ROS 2 type of
    the same name (see the module docstring).
    """
    if reader.is2:
        return {c.id: bytes for c in connections}
    destination = event_typestore()
    destination.register({name: fields for name, fields in reader.typestore.fielddefs.items()
                          if name not in destination.fielddefs})
    cache: dict[str, object] = {}
    return {c.id: generate_message_converter(reader.typestore, destination, c.msgtype,
                                             c.msgtype, cache, src_is2=False, dst_is2=True)
            for c in connections}


def _wait_for_acks(publishers, timeout_s: float) -> None:
    """Let reliable delivery finish before the caller exits (a fast replay ends in ms)."""
    from rclpy.duration import Duration
    deadline = time.monotonic() + timeout_s
    for publisher in publishers:
        publisher.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.0)))


def _wait_for_subscribers(publishers: dict, wait_s: float, count: int) -> list[str]:
    """
    Wait for ``count`` subscribers per topic, then give discovery time to finish.

    Return the published topic names that still have fewer than ``count`` subscribers.
    """
    if wait_s <= 0:
        return []
    deadline = time.monotonic() + wait_s

    def missing() -> list[str]:
        return [p.topic_name for p in publishers.values() if p.get_subscription_count() < count]

    while time.monotonic() < deadline and missing():
        time.sleep(0.05)
    if missing():
        return missing()
    # a publisher sees a match before the subscriber has matched it back
    time.sleep(SETTLE_S)
    return []


class SubscriberTimeout(SystemExit):
    """``--wait-for-subscribers`` ran out (exit status 1, with the message)."""


def _path(bag: str):
    import pathlib
    path = pathlib.Path(bag)
    if not path.exists():
        raise SystemExit(f'hybrid_pose_replay: bag {bag} does not exist')
    return path


def _clock(bag_ns: int):
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock
    return Clock(clock=Time(sec=bag_ns // 10**9, nanosec=bag_ns % 10**9))


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (ROS arguments after ``--ros-args`` go to the node)."""
    import rclpy
    from rclpy.utilities import remove_ros_args
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('bag', help='bag folder or file (MCAP, sqlite3 or ROS 1 .bag)')
    parser.add_argument('--topics', nargs='*', help='topics to play (default: all)')
    parser.add_argument('--rate', type=float, default=1.0, help='bag-time scale (default 1)')
    parser.add_argument('--fast', action='store_true', help='as fast as possible, reliable')
    parser.add_argument('--loop', type=int, default=1, help='passes; 0 loops forever')
    parser.add_argument('--start-offset', type=float, default=0.0, help='seconds to skip')
    parser.add_argument('--clock', action='store_true', help='publish bag time on /clock')
    parser.add_argument('--remap', nargs='*', default=[], help='old:=new topic remappings')
    parser.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='SECONDS',
                        help='start once every topic has --min-subscribers; after SECONDS '
                        'without them, play nothing and exit with status 1')
    parser.add_argument('--min-subscribers', type=int, default=1,
                        help='subscribers every topic needs before playback starts')
    parser.add_argument('--duration', type=float, default=None,
                        help='seconds of bag time to play per pass (default: all)')
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(remove_ros_args(['hybrid_pose_replay', *argv])[1:])
    remap = dict(r.split(':=', 1) for r in args.remap)
    rclpy.init(args=['hybrid_pose_replay', *argv])
    node = rclpy.create_node('hybrid_pose_replay')
    try:
        stats = replay(node, args.bag, args.topics, args.rate, args.fast, args.loop,
                       args.start_offset, args.clock, remap,
                       wait_s=args.wait_for_subscribers, min_subscribers=args.min_subscribers,
                       duration=args.duration, require_subscribers=True)
        print(f'published {stats.published} messages in {stats.wall_s:.2f} s '
              f'({stats.loops} pass(es), {stats.bag_s:.2f} s of bag time)')
    except KeyboardInterrupt:
        pass
    except Exception:
        # SIGINT shuts the context down first: a publish that fails after that is the
        # interrupt arriving mid-message, not an error
        if rclpy.ok():
            raise
    finally:
        # Ctrl-C reaches a launched replay twice (terminal and launch): the second must not
        # interrupt the clean-up
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(0)


if __name__ == '__main__':
    main()
