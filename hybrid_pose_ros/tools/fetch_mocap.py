"""Command line: download the motion capture takes used for the default weights."""
import argparse

from hybrid_pose_ros.data.fetch import fetch_mocap


def main(argv: list[str] | None = None) -> None:
    """Fetch the takes into ``--out`` (default ``data/mocap``) and print their paths."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/mocap')
    for path in fetch_mocap(parser.parse_args(argv).out):
        print(path)


if __name__ == '__main__':
    main()
