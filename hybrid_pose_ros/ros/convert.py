"""
``hybrid_pose_convert``: event datasets and bags to ROS 2 bags, without rosbag2.

Subcommands:

``dhp19``
    DHP19-format h5 files (the real dataset or ``hybrid_pose_generate_data`` output) to an MCAP
    bag: per camera ``/cam{k}/events`` (``dvs_msgs/EventArray`` or ``event_camera_msgs/
    EventPacket`` mono, one message per ``--message-ms`` of events, like a driver) and
    ``/cam{k}/pose_gt`` (``geometry_msgs/PoseArray`` of the 13 joints in sensor pixels, the
    node's pixel convention, NaN where the joint leaves the sensor), plus ``/pose_gt_3d`` (metres,
    world frame ``world``) and the projection matrices as ``/cam{k}/camera_info``-free YAML in
    the bag folder (``cameras.yaml``).
``dhp19-raw``
    The DHP19 release as downloaded (``DVS_movies/`` AEDAT 2.0 and ``Vicon_data/`` .mat) to the
    DHP19-format h5 files that ``dhp19`` and training read, aligned and filtered as DHP19's
    MATLAB code does it; resumable (:mod:`hybrid_pose_ros.data.dhp19_raw`, docs/dhp19.md).
``to-packet`` / ``to-array``
    Re-encode the ``dvs_msgs/EventArray`` topics of a bag as ``EventPacket`` (mono) or back.
``aedat4``
    An iniVation DV recording (AEDAT4, e.g. DAVIS346 or DVXplorer) to an MCAP bag, decoded with
    the ``aedat`` package: the events of the file's first event stream on ``--topic`` (default
    ``/events``; ``/dvs/events`` is the ROS 1 DAVIS driver's name), one message per
    ``--message-ms`` of event time that holds events (default 33.3, the ROS 1 driver's 30 Hz),
    with the stream's sensor size and frame_id ``dvs_optical_frame``, as the message type the
    node reads by default (``--encoding``: ``packet``, EventPacket mono). AEDAT4 timestamps are
    microseconds since the Unix epoch and are kept as they are (event times and stamps are the
    recording's wall-clock time); each message is stamped with the end of its time slice.
    Frames, IMU and triggers are not converted.
``ros1``
    A ROS 1 bag (e.g. recorded with the ROS 1 DAVIS driver) to a ROS 2 MCAP bag with rosbags'
    converter: ROS 1 types become the ROS 2 Kilted types of the same name (``Header`` loses
    ``seq``, ``time`` becomes ``builtin_interfaces/Time``; ``dvs_msgs/EventArray`` becomes the
    ROS 2 ``dvs_msgs/EventArray``). ``hybrid_pose_replay`` also plays ROS 1 bags directly.

DHP19 event times are microseconds from 0; bags carry them as ROS time from ``--t0`` seconds.
"""
import argparse
import pathlib
import sys

from hybrid_pose_ros.data import dhp19_raw
from hybrid_pose_ros.events import aedat4
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.interfaces import (
    DEFAULT_INPUT_TYPE, EVENT_ARRAY, EVENT_PACKET, event_typestore)
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.writer import CompressionFormat, CompressionMode
import yaml

DEFAULT_T0_S = 1_700_000_000
DVS_FRAME_ID = 'dvs_optical_frame'
ENCODING_OF_INPUT_TYPE = {'event_packet': 'packet', 'dvs': 'dvs'}
"""The ``--encoding`` that writes the messages of each node ``input_type``."""
POSE_ARRAY = 'geometry_msgs/msg/PoseArray'


def _pose_array_cdr(typestore, stamp_ns: int, frame_id: str, points: np.ndarray) -> bytes:
    """Serialise a PoseArray with ``points [J, 3]`` as positions (identity orientations)."""
    msg_types = typestore.types
    stamp = msg_types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                     nanosec=stamp_ns % 10**9)
    header = msg_types['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)
    point, quat, pose = (msg_types['geometry_msgs/msg/Point'],
                         msg_types['geometry_msgs/msg/Quaternion'],
                         msg_types['geometry_msgs/msg/Pose'])
    poses = [pose(position=point(x=float(p[0]), y=float(p[1]), z=float(p[2])),
                  orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0)) for p in points]
    return typestore.serialize_cdr(msg_types[POSE_ARRAY](header=header, poses=poses),
                                   POSE_ARRAY)


def _event_message(encoding: str, stamp_ns: int, frame_id: str, events: np.ndarray,
                   seq: int, height: int = DHP19_HEIGHT, width: int = DHP19_WIDTH) -> bytes:
    if encoding == 'dvs':
        return codecs.encode_event_array(stamp_ns, frame_id, height, width, events)
    base_ns = int(events['t'][0]) * 1000 if len(events) else stamp_ns
    return codecs.encode_event_packet(stamp_ns, frame_id, height, width, seq, base_ns, 'mono',
                                      codecs.encode_mono_events(events, base_ns))


def dhp19_to_bag(folder: str, recording: str, cameras: list[int], out: str,
                 encoding: str = 'dvs', message_ms: float = 10.0,
                 t0_s: int = DEFAULT_T0_S, max_seconds: float | None = None) -> dict[str, int]:
    """
    Write one DHP19-format recording as a bag; return the message count per topic.

    ``max_seconds`` keeps only the recording's first seconds (events and labels).
    """
    from hybrid_pose_ros.data import dhp19
    from hybrid_pose_ros.data.cameras import project_dhp19
    typestore = event_typestore()
    t0_us = t0_s * 1_000_000
    poses_mm, label_us = dhp19.read_labels(dhp19.labels_path(folder, recording))
    end_us = int(max_seconds * 1e6) if max_seconds is not None else None
    if end_us is not None:
        poses_mm, label_us = poses_mm[label_us <= end_us], label_us[label_us <= end_us]
    counts: dict[str, int] = {}
    rig = {}
    writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        gt3d = writer.add_connection('/pose_gt_3d', POSE_ARRAY, typestore=typestore)
        for t_us, pose in zip(label_us, poses_mm):
            writer.write(gt3d, (t0_us + int(t_us)) * 1000, _pose_array_cdr(
                typestore, (t0_us + int(t_us)) * 1000, 'world', pose.T / 1000.0))
        counts['/pose_gt_3d'] = len(label_us)
        for cam in cameras:
            frame = f'cam{cam}_optical_frame'
            p_matrix = dhp19.load_projection_matrix(folder, cam)
            rig[f'cam{cam}'] = {'frame_id': frame, 'dhp19_projection_mm': p_matrix.tolist()}
            events = dhp19.read_events(dhp19.events_path(folder, recording), cam)
            if end_us is not None:
                events = events[events['t'] < end_us]
            events['t'] += t0_us
            topic = f'/cam{cam}/events'
            conn = writer.add_connection(topic, EVENT_ARRAY if encoding == 'dvs'
                                         else EVENT_PACKET, typestore=typestore)
            step = int(message_ms * 1000)
            # a camera without events still gets its (empty) messages over the labelled span
            last_us = int(events['t'][-1]) if len(events) else t0_us + int(label_us[-1]) - 1
            edges = np.arange(t0_us, last_us + step + 1, step)
            idx = np.searchsorted(events['t'], edges)
            for seq, (a, b, end) in enumerate(zip(idx[:-1], idx[1:], edges[1:])):
                writer.write(conn, int(end) * 1000,
                             _event_message(encoding, int(end) * 1000, frame, events[a:b], seq))
            counts[topic] = len(edges) - 1
            u, v = project_dhp19(p_matrix, np.swapaxes(poses_mm, 1, 2))
            # DHP19 projections put pixel c on [c, c+1); the node's convention is pixel centres
            xy = np.stack([u - 0.5, v - 0.5], axis=-1)
            outside = (xy[..., 0] < -0.5) | (xy[..., 0] > 345.5) | (xy[..., 1] < -0.5) \
                | (xy[..., 1] > 259.5)
            xy[outside] = np.nan
            gt = writer.add_connection(f'/cam{cam}/pose_gt', POSE_ARRAY, typestore=typestore)
            for t_us, joints in zip(label_us, xy):
                stamp = (t0_us + int(t_us)) * 1000
                points = np.concatenate([joints, np.ones((len(joints), 1))], axis=1)
                writer.write(gt, stamp, _pose_array_cdr(typestore, stamp, frame, points))
            counts[f'/cam{cam}/pose_gt'] = len(label_us)
    rig['joint_names'] = list(JOINT_NAMES)
    (pathlib.Path(out) / 'cameras.yaml').write_text(yaml.safe_dump(rig, sort_keys=False))
    return counts


def reencode_bag(src: str, dst: str, to: str) -> int:
    """Re-encode event topics of ``src`` as EventPacket mono (``to='packet'``) or EventArray."""
    typestore = event_typestore()
    source_type, target_type = ((EVENT_ARRAY, EVENT_PACKET) if to == 'packet'
                                else (EVENT_PACKET, EVENT_ARRAY))
    converted = 0
    with AnyReader([pathlib.Path(src)], default_typestore=typestore) as reader, \
            Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        outputs = {}
        for conn in reader.connections:
            msgtype = target_type if conn.msgtype == source_type else conn.msgtype
            outputs[conn.id] = writer.add_connection(conn.topic, msgtype, typestore=typestore)
        seqs: dict[int, int] = {}
        for conn, stamp, raw in reader.messages():
            if conn.msgtype == source_type:
                if to == 'packet':
                    decoded = codecs.decode_event_array(raw)
                    events = decoded.events
                else:
                    decoded = codecs.decode_event_packet(raw)
                    events = codecs.decode_packet_events(decoded)
                seq = seqs.get(conn.id, 0)
                seqs[conn.id] = seq + 1
                raw = _event_message('packet' if to == 'packet' else 'dvs', decoded.stamp_ns,
                                     decoded.frame_id, events, seq, decoded.height,
                                     decoded.width)
                converted += 1
            writer.write(outputs[conn.id], stamp, bytes(raw))
    return converted


def ros1_to_bag(src: str, dst: str) -> None:
    """Convert a ROS 1 bag to a ROS 2 MCAP bag with the Kilted and event types as targets."""
    from rosbags.convert import convert
    convert([pathlib.Path(src)], pathlib.Path(dst), 'mcap', 9, None, 'file', event_typestore(),
            event_typestore(), [], [], [], [])


def read_aedat4_events(path: str) -> tuple[np.ndarray, int, int]:
    """Read an AEDAT4 recording (:func:`events.aedat4.read_aedat4_events`); exit on failure."""
    try:
        return aedat4.read_aedat4_events(path)
    except (ImportError, ValueError) as error:
        sys.exit(f'hybrid_pose_convert: {error}')


def aedat4_to_bag(path: str, out: str,
                  encoding: str = ENCODING_OF_INPUT_TYPE[DEFAULT_INPUT_TYPE],
                  message_ms: float = 33.3, topic: str = '/events') -> dict[str, int]:
    """Write the events of an AEDAT4 recording as a bag; return the message count per topic."""
    events, width, height = read_aedat4_events(path)
    typestore = event_typestore()
    step = max(1, round(message_ms * 1000))
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, EVENT_ARRAY if encoding == 'dvs' else EVENT_PACKET,
                                     typestore=typestore)
        seq = 0
        if len(events):
            start = int(events['t'][0])
            edges = np.arange(start, int(events['t'][-1]) + step + 1, step)
            idx = np.searchsorted(events['t'], edges)
            for a, b, end in zip(idx[:-1], idx[1:], edges[1:]):
                if a == b:
                    continue
                stamp_ns = int(end) * 1000
                writer.write(conn, stamp_ns, _event_message(
                    encoding, stamp_ns, DVS_FRAME_ID, events[a:b], seq, height, width))
                seq += 1
    return {topic: seq}


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    d = sub.add_parser('dhp19', help='DHP19-format recording to an MCAP bag')
    d.add_argument('folder')
    d.add_argument('recording', help='e.g. S13_session1_mov1')
    d.add_argument('out')
    d.add_argument('--cameras', type=int, nargs='+', default=[3])
    d.add_argument('--encoding', choices=('dvs', 'packet'), default='dvs')
    d.add_argument('--message-ms', type=float, default=10.0)
    d.add_argument('--t0', type=int, default=DEFAULT_T0_S, help='ROS time of t=0, seconds')
    d.add_argument('--max-seconds', type=float, help="keep only the recording's first seconds")
    dhp19_raw.add_convert_arguments(sub.add_parser(
        'dhp19-raw', help='raw DHP19 release (AEDAT 2.0 + Vicon) to DHP19-format h5 files'))
    for name in ('to-packet', 'to-array'):
        p = sub.add_parser(name, help=f're-encode event topics ({name})')
        p.add_argument('src')
        p.add_argument('dst')
    a = sub.add_parser('aedat4', help='AEDAT4 recording (iniVation DV) to an MCAP bag')
    a.add_argument('file')
    a.add_argument('out')
    a.add_argument('--encoding', choices=('dvs', 'packet'),
                   default=ENCODING_OF_INPUT_TYPE[DEFAULT_INPUT_TYPE],
                   help="message type: packet (EventPacket mono, the node's default "
                   'input_type) or dvs (EventArray)')
    a.add_argument('--message-ms', type=float, default=33.3,
                   help='event time per message (mono packets: below 4294)')
    a.add_argument('--topic', default='/events', help='event topic (e.g. /dvs/events)')
    r = sub.add_parser('ros1', help='ROS 1 bag to a ROS 2 MCAP bag')
    r.add_argument('src')
    r.add_argument('dst')
    args = parser.parse_args(argv)
    if args.command == 'dhp19-raw':
        sys.exit(dhp19_raw.convert_command(args))
    target = getattr(args, 'out', None) or getattr(args, 'dst', None)
    if pathlib.Path(target).exists():
        sys.exit(f'hybrid_pose_convert: {target} exists; remove it first')
    if args.command in ('dhp19', 'aedat4'):
        counts = (dhp19_to_bag(args.folder, args.recording, args.cameras, args.out,
                               args.encoding, args.message_ms, args.t0, args.max_seconds)
                  if args.command == 'dhp19' else
                  aedat4_to_bag(args.file, args.out, args.encoding, args.message_ms, args.topic))
        for topic, n in counts.items():
            print(f'{topic}: {n} messages')
    elif args.command in ('to-packet', 'to-array'):
        n = reencode_bag(args.src, args.dst, 'packet' if args.command == 'to-packet' else 'array')
        print(f're-encoded {n} event messages')
    else:
        ros1_to_bag(args.src, args.dst)
        print(f'converted {args.src} -> {args.dst}')


if __name__ == '__main__':
    main()
