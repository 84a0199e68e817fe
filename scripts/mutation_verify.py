# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Re-test surviving mutants of a group in a fresh pytest process, with the mutant in the source.

mutmut switches mutants inside functions at call time, in workers forked after the package
was imported, so a function that only runs at import time (a factory whose results a module
constant keeps, such as the parameter checks) cannot be switched by it: its mutants survive
whatever the tests. Here each survivor is written into a scratch copy of the source, and the
group's tests run on it in a new process; a mutant they kill is recorded as killed (exit code
1) in mutmut's results, one they do not kill stays a survivor.
"""
import argparse
import configparser
import json
import os
import pathlib
import shutil
import subprocess
import sys


def _mutated_source(tree: pathlib.Path, tools: str, name: str, source: pathlib.Path) -> str:
    """Return the text of ``source`` with mutant ``name`` applied (the copy is left as it was)."""
    original = source.read_bytes()
    times = source.stat()
    script = ('import sys; sys.path.append(sys.argv[1]); sys.argv = ["mutmut", "apply", '
              'sys.argv[2]]; from mutmut.__main__ import cli; cli()')
    try:
        subprocess.run([sys.executable, '-c', script, tools, name], cwd=tree, check=True,
                       capture_output=True)
        return source.read_text()
    finally:
        source.write_bytes(original)
        os.utime(source, ns=(times.st_atime_ns, times.st_mtime_ns))


def main() -> None:
    """Re-test the given survivors (default: all of the group) and record the killed ones."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('tree', type=pathlib.Path, help="the group's copy (build/mutate/NAME)")
    parser.add_argument('tools', help='the folder mutmut is installed in')
    parser.add_argument('names', nargs='*', help='mutants to re-test (default: survivors)')
    args = parser.parse_args()
    tree = args.tree.resolve()
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(tree / 'setup.cfg')
    tests = setup.get('mutmut', 'pytest_add_cli_args_test_selection').split('\n')
    extra = setup.get('mutmut', 'pytest_add_cli_args').split('\n')
    scratch = tree.parent / (tree.name + '-verify')
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(tree, scratch, ignore=shutil.ignore_patterns('mutants', '__pycache__'))
    command = [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
               *[a for a in extra if a], *[t for t in tests if t]]
    environment = {**os.environ, 'PYTHONPATH': str(scratch)}
    if subprocess.run(command, cwd=scratch, env=environment, capture_output=True).returncode:
        sys.exit(f'the tests of {tree.name} fail without a mutant: nothing to verify')
    metas = sorted((tree / 'mutants').rglob('*.py.meta'))
    for meta_path in metas:
        meta = json.loads(meta_path.read_text())
        codes = meta['exit_code_by_key']
        names = [n for n, c in codes.items() if (n in args.names if args.names else c == 0)]
        if not names:
            continue
        rel = meta_path.relative_to(tree / 'mutants').with_suffix('')
        for name in names:
            text = _mutated_source(tree, str(pathlib.Path(args.tools).resolve()), name,
                                   tree / rel)
            (scratch / rel).write_text(text)
            result = subprocess.run(command, cwd=scratch, env=environment, capture_output=True)
            (scratch / rel).write_bytes((tree / rel).read_bytes())
            killed = result.returncode in (1, 2)    # a failed test, or a failed import
            print(f'{"killed" if killed else "survived"} {name}', flush=True)
            if killed:
                meta = json.loads(meta_path.read_text())
                meta['exit_code_by_key'][name] = 1
                meta_path.write_text(json.dumps(meta, indent=4))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
    main()
