"""
Command line: the paper's table (ANN every step, ANN held, hybrid, pure SNN) on a split.

Also a row of the DHP19 baseline CNN, trained on real DHP19 (the bundled weights, or
``--dhp19-cnn PATH``; ``--no-dhp19-cnn`` leaves it out).

Writes ``evaluation.json`` and ``mpjpe_per_step.png`` into ``--out-dir`` and prints the table.
"""
import argparse
import os

from hybrid_pose_ros.data.dhp19_raw import converted_with_filters, resolve_data_folders
from hybrid_pose_ros.events.aedat4 import read_aedat4_events
from hybrid_pose_ros.model.decode import DEFAULT_MIN_CONFIDENCE
from hybrid_pose_ros.model.dhp19_cnn import default_dhp19_cnn_path
from hybrid_pose_ros.model.inference import ANN_PRECISIONS, ANN_RUNTIMES
from hybrid_pose_ros.training.evaluate import run
from hybrid_pose_ros.training.no_person import standard_scenes


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``hybrid_pose_evaluate``."""
    parser = argparse.ArgumentParser(
        description='Evaluate trained checkpoints on a DHP19-format split: 2D MPJPE per '
                    'step, 3D MPJPE by triangulation, energy per window.')
    parser.add_argument('--run-dir', help='training output folder: takes hybrid.pt, '
                        'pure_snn.pt and ann.pt from it unless given explicitly')
    parser.add_argument('--hybrid', help='hybrid checkpoint')
    parser.add_argument('--pure-snn', help='pure-SNN checkpoint')
    parser.add_argument('--ann', help="ANN checkpoint (default: the hybrid's frozen ANN)")
    parser.add_argument('--data', nargs='+', required=True,
                        help='DHP19-format folders, or the raw DHP19 download (converted into '
                        '$HYBRID_POSE_DHP19_CACHE, see docs/dhp19.md)')
    parser.add_argument('--cameras', type=int, nargs='+', default=[2, 3],
                        help='h5 camera indices (two or more give 3D by triangulation)')
    parser.add_argument('--split', default='test', choices=('train', 'test'))
    parser.add_argument('--out-dir', help='output folder (default: RUN_DIR/evaluation)')
    parser.add_argument('--cache', help='.npz cache of the precomputed windows')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--energy-windows', type=int, default=4,
                        help='windows sampled for the synaptic-operation accounting')
    parser.add_argument('--max-windows', type=int, help='evaluate only the first N windows')
    parser.add_argument('--ann-precision', default='float32', choices=ANN_PRECISIONS,
                        help="arithmetic of the ANNs (as the node's ann_precision)")
    parser.add_argument('--ann-runtime', default='torch', choices=ANN_RUNTIMES,
                        help="what runs the hybrid's window initialisation (as the node's "
                        'ann_runtime)')
    parser.add_argument('--ann-lead-bins', type=int, default=0,
                        help="bins before each window start at which the ANN's events end (as "
                        "the node's ann_lead_bins; 0: the paper)")
    parser.add_argument('--dhp19-cnn', nargs='?', metavar='PATH',
                        help='Keras file of the DHP19 baseline CNN for the dhp19_cnn row '
                        '(default: the bundled weights/dhp19/DHP_CNN.model)')
    parser.add_argument('--no-dhp19-cnn', action='store_true', help='no dhp19_cnn row')
    parser.add_argument('--dhp19-cnn-no-filters', action='store_true',
                        help="feed the DHP19 CNN without DHP19's hot-pixel, background-activity "
                        'and IR-mask filters (data converted by dhp19-raw with them are never '
                        'filtered twice)')
    parser.add_argument('--min-confidence', type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help="joints below count as missing (as the node's min_confidence)")
    parser.add_argument('--no-person', action='store_true',
                        help='also run the hybrid on scenes without a person (the empty room '
                        'with sensor noise, and seen by a swaying camera) and report the '
                        'share of joints it would still publish')
    parser.add_argument('--no-person-aedat4', nargs='+', default=[], metavar='FILE',
                        help='real recordings without a person for the same report (AEDAT4)')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    checkpoints = {'hybrid': args.hybrid, 'pure_snn': args.pure_snn, 'ann': args.ann}
    if args.run_dir:
        for kind in ('hybrid', 'pure_snn'):
            candidate = os.path.join(args.run_dir, f'{kind}.pt')
            if checkpoints[kind] is None and os.path.exists(candidate):
                checkpoints[kind] = candidate
        candidate = os.path.join(args.run_dir, 'ann.pt')
        if checkpoints['hybrid'] is None and checkpoints['ann'] is None and os.path.exists(
                candidate):
            checkpoints['ann'] = candidate
    if not any(checkpoints.values()):
        parser.error('no checkpoint: give --run-dir or --hybrid/--pure-snn/--ann')
    if args.no_dhp19_cnn and args.dhp19_cnn:
        parser.error('--dhp19-cnn and --no-dhp19-cnn exclude each other')
    dhp19_cnn = None
    if not args.no_dhp19_cnn:
        try:
            dhp19_cnn = args.dhp19_cnn or str(default_dhp19_cnn_path())
        except FileNotFoundError as exc:
            parser.error(f'{exc}; give --dhp19-cnn PATH or --no-dhp19-cnn')
    scenes = standard_scenes() if args.no_person else {}
    for path in args.no_person_aedat4:
        try:
            scenes[os.path.splitext(os.path.basename(path))[0]] = read_aedat4_events(path)
        except (ImportError, OSError, ValueError) as exc:
            parser.error(f'--no-person-aedat4 {path}: {exc}')
    out_dir = args.out_dir or os.path.join(args.run_dir or '.', 'evaluation')
    data = resolve_data_folders(args.data, args.cameras, (args.split,), progress=not args.quiet)
    # DHP19 filters a recording once: data converted with its filters are not filtered again
    refiltered = not args.dhp19_cnn_no_filters and not all(
        converted_with_filters(folder) for folder in data)
    run(checkpoints, data, args.cameras, out_dir, split=args.split, device=args.device,
        batch_size=args.batch_size, cache=args.cache, energy_windows=args.energy_windows,
        progress=not args.quiet, max_windows=args.max_windows,
        ann_precision=args.ann_precision, ann_runtime=args.ann_runtime,
        ann_lead_bins=args.ann_lead_bins, dhp19_cnn=dhp19_cnn,
        dhp19_cnn_filters=refiltered, min_confidence=args.min_confidence,
        no_person=scenes)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
