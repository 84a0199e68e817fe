# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Summarise mutmut's verdicts per module (run in the mutation copy, where ``mutants/`` is).

The mutation score of a module is detected / (all - equivalent): killed and timed-out mutants
are detected; survivors and mutants no selected test reaches are not. Equivalent mutants, which
no test can tell from the original, are listed with the reason in ``scripts/mutmut.cfg``.
``--survivors`` prints the names of the surviving mutants of the configured modules instead.
"""
import argparse
import configparser
import fnmatch
import json
import pathlib

DETECTED = {1: 'killed', 3: 'killed', 36: 'timeout', -24: 'timeout', 24: 'timeout',
            152: 'timeout', 255: 'timeout'}
CONFIG = pathlib.Path(__file__).resolve().with_name('mutmut.cfg')


def _read_config(path: pathlib.Path) -> configparser.ConfigParser:
    """Read an ini file keeping the case of its keys (mutant names)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path, encoding='utf-8')
    return parser


def main() -> None:
    """Print the per-module table or the survivors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--survivors', action='store_true', help='print surviving mutants')
    args = parser.parse_args()
    setup = _read_config(pathlib.Path('setup.cfg'))
    patterns = setup.get('mutmut', 'only_mutate', fallback='').split()
    config = _read_config(CONFIG)
    equivalent = dict(config.items('equivalent')) if config.has_section('equivalent') else {}
    rows = []
    for meta in sorted(pathlib.Path('mutants').rglob('*.py.meta')):
        source = str(meta.relative_to('mutants'))[:-len('.meta')]
        if not any(fnmatch.fnmatch(source, p) for p in patterns):
            continue
        codes = json.loads(meta.read_text())['exit_code_by_key']
        if args.survivors:
            print('\n'.join(n for n, c in codes.items() if c == 0 and n not in equivalent))
            continue
        names = [n for n in codes if n not in equivalent]
        detected = sum(codes[n] in DETECTED for n in names)
        survived = sum(codes[n] == 0 for n in names)
        unchecked = sum(codes[n] is None for n in names)
        other = len(names) - detected - survived - unchecked
        score = f'{100 * detected / (len(names) - unchecked):.1f} %' \
            if len(names) > unchecked else '-'
        rows.append((source, len(codes), len(codes) - len(names), detected, survived,
                     other, unchecked, score))
    if args.survivors:
        return
    print('| module | mutants | equivalent | killed | survived | no test / other | '
          'not run | score |')
    print('|---|---|---|---|---|---|---|---|')
    for row in rows:
        print('| ' + ' | '.join(str(v) for v in row) + ' |')
    total = [sum(r[i] for r in rows) for i in range(1, 7)]
    checked = total[0] - total[1] - total[5]
    score = f'{100 * total[2] / checked:.1f} %' if checked else '-'
    print('| all | ' + ' | '.join(str(v) for v in total) + f' | {score} |')


if __name__ == '__main__':
    main()
