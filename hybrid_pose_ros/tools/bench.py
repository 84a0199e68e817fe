"""
``hybrid_pose_bench``: the performance tables of the package, printed and written as JSON.

Sections (``--sections``, default all four):

``ingest``
    Events per second from raw CDR bytes to a numpy event array: the package's numpy codecs
    against rclpy's typed deserialisation of the same message, in one run (the ratio is the
    result; absolute numbers depend on the machine), for 10k, 100k and 1M events, for
    ``dvs_msgs/EventArray`` and ``event_camera_msgs/EventPacket`` (mono). Timed on one core.
``model``
    ANN initialisation and SNN step latency per preset and thread count, MACs, synaptic
    operations, firing rates and energy: ``hybrid_pose_model_bench`` (see its options).
``sparse``
    The event-driven SNN step against the dense one, per layer at 1/3/5 % input activity and per
    whole step at real activity, in one run: :mod:`hybrid_pose_ros.tools.bench_sparse`.
``e2e``
    The node as a separate process fed from the sample bag over DDS: latency from the publish of
    the message that completes a bin to the arrival of its PoseArray, rates, drops, CPU, and the
    capacity (highest event rate without dropped bins), see :mod:`hybrid_pose_ros.tools.bench_e2e`.
"""
import argparse
import json
import os
import pathlib
import time
from typing import Any, Callable, Sequence

from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
from hybrid_pose_ros.model.inference import ANN_PRECISIONS, ANN_RUNTIMES, resolve_ann_precision
from hybrid_pose_ros.model.openvino_init import openvino_available
from hybrid_pose_ros.ros import codecs
import numpy as np

SIZES = (10_000, 100_000, 1_000_000)


def _events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000_000 + np.sort(rng.integers(0, 50_000, n))
    return make_events(t, rng.integers(0, DHP19_WIDTH, n), rng.integers(0, DHP19_HEIGHT, n),
                       rng.integers(0, 2, n))


def _rate(function: Callable[[], np.ndarray], n: int, min_seconds: float) -> float:
    """Best events/s over repeated calls lasting at least ``min_seconds`` in total."""
    times = []
    start = time.perf_counter()
    while not times or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - t0)
        assert len(out) == n
    return n / min(times)


def bench_ingest(sizes: Sequence[int] = SIZES, min_seconds: float = 1.0) -> list[dict[str, Any]]:
    """Time numpy and typed decoding of EventArray and EventPacket messages of ``sizes``."""
    rows = []
    for n in sizes:
        events = _events(n)
        stamp = int(events['t'][0]) * 1000
        array_bytes = codecs.encode_event_array(stamp, 'camera', DHP19_HEIGHT, DHP19_WIDTH,
                                                events)
        packet_bytes = codecs.encode_event_packet(stamp, 'camera', DHP19_HEIGHT, DHP19_WIDTH, 0,
                                                  stamp, 'mono',
                                                  codecs.encode_mono_events(events, stamp))
        cases = {
            'EventArray': (lambda: codecs.decode_event_array(array_bytes).events,
                           lambda: codecs.typed_decode_event_array(array_bytes)),
            'EventPacket mono': (
                lambda: codecs.decode_packet_events(codecs.decode_event_packet(packet_bytes)),
                lambda: codecs.typed_decode_event_packet(packet_bytes)),
        }
        for message, (fast, typed) in cases.items():
            np.testing.assert_array_equal(fast(), typed())
            fast_rate = _rate(fast, n, min_seconds)
            typed_rate = _rate(typed, n, min_seconds if n < 1_000_000 else 0.0)
            rows.append({'message': message, 'events': n, 'numpy_mev_s': fast_rate / 1e6,
                         'typed_mev_s': typed_rate / 1e6, 'ratio': fast_rate / typed_rate})
    return rows


def print_ingest(rows: list[dict[str, Any]]) -> None:
    """Print the ingestion table."""
    print('\n## Event ingestion (one core): raw CDR bytes -> numpy events')
    print(f'| {"message":<17} | {"events":>9} | {"numpy Mev/s":>11} | {"rclpy typed Mev/s":>17} '
          f'| {"ratio":>7} |')
    print(f'|{"-" * 19}|{"-" * 11}|{"-" * 13}|{"-" * 19}|{"-" * 9}|')
    for r in rows:
        print(f'| {r["message"]:<17} | {r["events"]:>9,} | {r["numpy_mev_s"]:>11.1f} | '
              f'{r["typed_mev_s"]:>17.3f} | {r["ratio"]:>6.0f}x |')


def main(argv: list[str] | None = None) -> None:
    """Run the chosen sections, print their tables and write ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--sections', nargs='+', default=['ingest', 'model', 'sparse', 'e2e'],
                        choices=['ingest', 'model', 'sparse', 'e2e'])
    parser.add_argument('--json', default='bench_output/bench.json')
    parser.add_argument('--quick', action='store_true', help='shorter timing (for tests)')
    parser.add_argument('--threads', type=int, default=1,
                        help='e2e: torch threads of the node (its threads parameter)')
    parser.add_argument('--message-ms', type=float, default=None,
                        help='e2e: re-cut the bag into messages of this many ms of events '
                        '(default: replay the messages as recorded)')
    parser.add_argument('--snn-backend', default='sparse', choices=('sparse', 'dense'),
                        help='e2e: the SNN backend of the capacity runs (the other one is '
                        'measured at 1x as a baseline)')
    parser.add_argument('--ann-runtime', default='auto', choices=ANN_RUNTIMES,
                        help='e2e: the ANN runtime of the capacity runs (torch is measured at '
                        '1x as a baseline)')
    parser.add_argument('--ann-precision', default='auto', choices=ANN_PRECISIONS,
                        help='e2e: the ANN precision of the capacity runs (OpenVINO in the '
                        "CPU's native float precision is measured at 1x as a baseline)")
    parser.add_argument('--ann-lead-bins', type=int, default=0,
                        help="e2e: the node's ann_lead_bins in the capacity runs (the other of "
                        '0 and 1 is measured at 1x as a baseline)')
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if 'ingest' in args.sections:
        sizes = (10_000, 100_000) if args.quick else SIZES
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})   # one core, as the targets are stated
        try:
            results['ingest'] = bench_ingest(sizes, 0.05 if args.quick else 1.0)
        finally:
            os.sched_setaffinity(0, affinity)
        print_ingest(results['ingest'])
        results['ingest_summary'] = {
            r['message']: {'min_ratio': min(x['ratio'] for x in results['ingest']
                                            if x['message'] == r['message']),
                           'numpy_mev_s_at_largest': r['numpy_mev_s']}
            for r in results['ingest'] if r['events'] == max(sizes)}
    if 'model' in args.sections:
        from hybrid_pose_ros.tools import model_bench
        model_json = pathlib.Path(args.json).with_name('model.json')
        model_json.parent.mkdir(parents=True, exist_ok=True)
        quick = ['--reps', '5', '--heavy-reps', '1'] if args.quick else []
        model_bench.main(['--json', str(model_json)] + quick)
        results['model'] = json.loads(model_json.read_text())
    if 'sparse' in args.sections:
        from hybrid_pose_ros.tools import bench_sparse
        results['sparse'] = bench_sparse.bench_sparse(quick=args.quick)
        bench_sparse.print_sparse(results['sparse'])
    if 'e2e' in args.sections:
        from hybrid_pose_ros.tools import bench_e2e
        setup = bench_e2e.NodeSetup(args.snn_backend, args.ann_runtime, args.ann_precision,
                                    args.ann_lead_bins)
        results['e2e'] = bench_e2e.bench_e2e(
            threads=args.threads, setup=setup, baselines=(
                setup._replace(snn_backend='dense' if args.snn_backend == 'sparse' else 'sparse'),
                setup._replace(ann_runtime='torch', ann_precision='auto'))
            + ((setup._replace(ann_runtime='openvino',
                               ann_precision=resolve_ann_precision('auto')),)
               if openvino_available() else ())
            + (setup._replace(ann_lead_bins=0 if args.ann_lead_bins else 1),),
            message_us=round(args.message_ms * 1000) if args.message_ms else None,
            rates=(1.0, 4.0) if args.quick else (1.0, 1.5, 2.0, 3.0, 4.0, 8.0))
        bench_e2e.print_e2e(results['e2e'])
    pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    print(f'\nwritten {args.json}')


if __name__ == '__main__':
    main()
