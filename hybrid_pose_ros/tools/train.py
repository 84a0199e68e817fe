"""
Command line: train the ANN, the hybrid ANN-SNN and the pure-SNN baseline.

Configuration comes from a YAML file (``--config``; see ``config/train_cpu.yaml``); every key
can be overridden with ``--set key=value`` (dotted keys, YAML values: ``--set ann.lr=2e-4``,
``--set model.input_height=32``) or with the explicit flags below. Multi-GPU:
``torchrun --nproc_per_node N -m hybrid_pose_ros.tools.train ...``.
"""
import argparse

from hybrid_pose_ros.training.train import load_config, STAGES, train


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``hybrid_pose_train``."""
    parser = argparse.ArgumentParser(
        description='Train the ANN, hybrid ANN-SNN and pure SNN on DHP19-format data.')
    parser.add_argument('--config', help='YAML configuration (defaults: training/train.py)')
    parser.add_argument('--set', dest='assignments', action='append', default=[],
                        metavar='KEY=VALUE', help='override a configuration key (repeatable)')
    parser.add_argument('--stage', choices=STAGES + ('all',), help='stage(s) to run')
    parser.add_argument('--data', nargs='+', help='DHP19-format folders, or the raw DHP19 '
                        'download (converted into $HYBRID_POSE_DHP19_CACHE, docs/dhp19.md)')
    parser.add_argument('--cameras', type=int, nargs='+', help='h5 camera indices')
    parser.add_argument('--out-dir', help='output folder for checkpoints and logs')
    parser.add_argument('--cache-dir', help='folder for the precomputed-window caches')
    parser.add_argument('--device', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--epochs', type=int, help='epochs of every stage')
    parser.add_argument('--max-minutes', type=float, help='time budget of every stage')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the {stage}_state.pt files in the output folder')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.assignments)
    for key, value in (('stages', args.stage), ('data', args.data), ('cameras', args.cameras),
                       ('out_dir', args.out_dir), ('cache_dir', args.cache_dir),
                       ('device', args.device), ('seed', args.seed)):
        if value is not None:
            config[key] = value
    for stage in STAGES:
        if args.epochs is not None:
            config[stage]['epochs'] = args.epochs
        if args.max_minutes is not None:
            config[stage]['max_minutes'] = args.max_minutes
    if args.quiet:
        config['progress'] = False
    train(config, resume=args.resume)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
