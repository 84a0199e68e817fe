# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Summarise mutmut's verdicts per module over the groups' copies made by ``scripts/mutate.sh``.

The mutation score of a module is detected / (all - equivalent): killed and timed-out mutants
are detected; survivors and mutants no selected test reaches are not. Equivalent mutants, which
no test can tell from the original, are listed with the reason in ``scripts/mutmut.cfg``.
``--survivors`` prints the names of the surviving mutants instead.
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


def _verdicts(tree: pathlib.Path) -> dict[str, dict[str, int | None]]:
    """Return mutmut's exit code per mutant, per module of the group copied to ``tree``."""
    setup = _read_config(tree / 'setup.cfg')
    patterns = setup.get('mutmut', 'only_mutate', fallback='').split()
    verdicts = {}
    for meta in sorted((tree / 'mutants').rglob('*.py.meta')):
        source = str(meta.relative_to(tree / 'mutants'))[:-len('.meta')]
        if any(fnmatch.fnmatch(source, p) for p in patterns):
            verdicts[source] = json.loads(meta.read_text())['exit_code_by_key']
    return verdicts


def main() -> None:
    """Print the per-module table or the survivors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('trees', nargs='+', type=pathlib.Path, help="the groups' copies")
    parser.add_argument('--survivors', action='store_true', help='print surviving mutants')
    args = parser.parse_args()
    config = _read_config(CONFIG)
    equivalent = dict(config.items('equivalent')) if config.has_section('equivalent') else {}
    verdicts = {}
    for tree in args.trees:
        verdicts.update(_verdicts(tree))
    if args.survivors:
        print('\n'.join(name for codes in verdicts.values() for name, code in codes.items()
                        if code == 0 and name not in equivalent))
        return
    rows = []
    for source, codes in verdicts.items():
        names = [n for n in codes if n not in equivalent]
        detected = sum(codes[n] in DETECTED for n in names)
        survived = sum(codes[n] == 0 for n in names)
        unchecked = sum(codes[n] is None for n in names)
        other = len(names) - detected - survived - unchecked
        rows.append((source, len(codes), len(codes) - len(names), detected, survived, other,
                     unchecked))
    print('| module | mutants | equivalent | killed | survived | no test / other | not run '
          '| score |')
    print('|---|---|---|---|---|---|---|---|')
    for row in rows + [('all', *(sum(r[i] for r in rows) for i in range(1, 7)))]:
        checked = row[1] - row[2] - row[6]
        score = f'{100 * row[3] / checked:.1f} %' if checked else '-'
        print('| ' + ' | '.join(str(v) for v in row) + f' | {score} |')


if __name__ == '__main__':
    main()
