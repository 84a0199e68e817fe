"""Command line: generate a synthetic DHP19-layout dataset from a mocap library or mocap files."""
import argparse
import dataclasses
import sys

from hybrid_pose_ros.data.generate import generate_dataset, generate_library, GenerateConfig
from hybrid_pose_ros.data.simulator import SimulatorConfig
from hybrid_pose_ros.data.user_mapping import MocapInputError


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``generate_data``."""
    parser = argparse.ArgumentParser(
        description='Render a body driven by motion capture, simulate four DAVIS346 cameras and '
                    'write DHP19-format events, labels and P matrices.')
    parser.add_argument('mocap', nargs='*', help='.bvh, or .asf/.amc files')
    parser.add_argument('--mapping', metavar='FILE',
                        help='a YAML mapping file for all MOCAP files: landmarks -> joints, '
                             'units, up_axis, fps, skip_frames, time_range, remove_root_drift '
                             '(see hybrid_pose_ros/data/user_mapping.py)')
    parser.add_argument('--library', help='a motion-capture library folder (takes.csv): whole '
                        'takes split by performer, a person, placement and sensor drawn per '
                        'recording (instead of MOCAP files)')
    parser.add_argument('--split', choices=('train', 'test'),
                        help='with --library: generate only this split')
    parser.add_argument('--max-recordings', type=int,
                        help='with --library: at most the first N recordings (of the shard)')
    parser.add_argument('--shard', default='0/1',
                        help='with --library: K/N generates every N-th recording from the K-th')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--render-hz', type=float, default=None,
                        help='render rate (default: 250 with --library, else 500)')
    parser.add_argument('--supersample', type=int, default=2)
    parser.add_argument('--cameras', type=int, nargs='+', default=[0, 1, 2, 3])
    parser.add_argument('--test-fraction', type=float, default=0.2,
                        help='last part of every take written as test subject 13')
    parser.add_argument('--holdout', nargs='*', default=[],
                        help='clip names held out whole as test subject 14')
    parser.add_argument('--max-seconds', type=float, default=None,
                        help='use at most this much of every clip')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=1,
                        help='processes simulating segments in parallel')
    parser.add_argument('--segment-seconds', type=float, default=None,
                        help='simulate recordings in independent segments of this length '
                             '(each with a short warm-up), so workers can share one camera')
    parser.add_argument('--threshold', type=float, default=SimulatorConfig.c_pos,
                        help='mean ON and OFF contrast threshold')
    parser.add_argument('--noise-hz', type=float, default=SimulatorConfig.noise_rate_hz,
                        help='background activity per pixel')
    parser.add_argument('--refractory-us', type=int, default=SimulatorConfig.refractory_us)
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.library) == bool(args.mocap):
        parser.error('give either MOCAP files or --library')
    if args.mapping and args.library:
        parser.error('--mapping is for MOCAP files, not --library')
    try:
        shard = tuple(int(k) for k in args.shard.split('/'))
    except ValueError:
        parser.error(f'--shard {args.shard!r}: expected K/N')
    sim = dataclasses.replace(SimulatorConfig(), c_pos=args.threshold, c_neg=args.threshold,
                              noise_rate_hz=args.noise_hz, refractory_us=args.refractory_us)
    render_hz = args.render_hz or (250.0 if args.library else 500.0)
    config = GenerateConfig(render_hz=render_hz, supersample=args.supersample,
                            cameras=tuple(args.cameras), test_fraction=args.test_fraction,
                            seed=args.seed, max_seconds=args.max_seconds, sim=sim,
                            workers=args.workers, segment_seconds=args.segment_seconds,
                            randomise=bool(args.library))
    if args.library:
        plan = generate_library(args.library, args.out, config, split=args.split, shard=shard,
                                max_recordings=args.max_recordings,
                                progress=not args.quiet)
    else:
        try:
            plan = generate_dataset(args.mocap, args.out, config, tuple(args.holdout),
                                    progress=not args.quiet, mapping=args.mapping)
        except MocapInputError as error:
            print(f'{parser.prog}: error: {error}', file=sys.stderr)
            return 2
    for rec in plan:
        print(f'{rec.name}: clip {rec.clip} [{rec.start_s:.2f}, {rec.end_s:.2f}) s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
