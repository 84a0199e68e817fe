"""
Command line: store int8 calibration inputs in a hybrid checkpoint (``hybrid_pose_calibrate``).

Draws ANN inputs from the training split of DHP19-format folders, built exactly as training
builds them, and writes them into the checkpoint, so that ``ann_precision:=int8`` (or ``auto``)
can quantise its ANN. Checkpoints written by ``hybrid_pose_train`` already carry them.
"""
import argparse

from hybrid_pose_ros.model.checkpoint import (
    add_ann_calibration, load_checkpoint, require_calibratable)
from hybrid_pose_ros.training.dataset import CALIBRATION_WINDOWS, WindowDataset


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``hybrid_pose_calibrate``."""
    parser = argparse.ArgumentParser(
        description='Store training ANN inputs in a hybrid checkpoint for int8 calibration.')
    parser.add_argument('--checkpoint', required=True, help='hybrid checkpoint to calibrate')
    parser.add_argument('--data', nargs='+', required=True,
                        help='DHP19-format folders (their training split is used)')
    parser.add_argument('--cameras', type=int, nargs='+', default=[2, 3],
                        help='h5 camera indices')
    parser.add_argument('--windows', type=int, default=CALIBRATION_WINDOWS,
                        help='number of ANN inputs to store (at most as many as the split has)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the draw')
    parser.add_argument('--cache', help='.npz cache of the precomputed training windows')
    parser.add_argument('--out', help='checkpoint to write (default: rewrite --checkpoint)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        loaded = load_checkpoint(args.checkpoint)
        require_calibratable(loaded)
        dataset = WindowDataset.load_or_build(args.cache, args.data, 'train', args.cameras,
                                              loaded.config, progress=not args.quiet)
        calibration = dataset.calibration_inputs(args.windows, seed=args.seed)
        source = (f'{len(calibration)} training ANN inputs of {", ".join(args.data)} '
                  f'(cameras {" ".join(map(str, args.cameras))}, seed {args.seed})')
        add_ann_calibration(args.checkpoint, calibration, args.out, source)
    except (OSError, ValueError) as error:   # CheckpointError too: one line, no traceback
        parser.exit(2, f'hybrid_pose_calibrate: {error}\n')
    print(f'wrote {args.out or args.checkpoint}: {source}, '
          f'{100 * (calibration > 0).mean():.1f} % nonzero counts')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
