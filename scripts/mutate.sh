#!/usr/bin/env bash
# Mutation testing of the core with mutmut (docs/mutation.md). Not part of `make test`.
#
#   scripts/mutate.sh [MODULE ...]   modules as paths or globs, e.g. 'hybrid_pose_ros/geometry/*'
#                                    (default: the whole core, only_mutate in scripts/mutmut.cfg)
#   MUTATE_RERUN=survived scripts/mutate.sh [MODULE ...]
#                                    re-runs the surviving mutants of those modules only
#                                    (after adding tests; a plain run keeps earlier verdicts)
#   MUTATE_DIR (default build/mutate), MUTATE_JOBS (default 2): work folder and workers.
#
# mutmut writes mutated files, so it runs on a copy of the commit HEAD under MUTATE_DIR, never
# on the checkout: commit the tests first. The copy keeps mutmut's results (mutants/): an
# interrupted run resumes where it stopped, and a source file that changed gets new mutants
# (only those are run again).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MUTMUT_VERSION=3.8.1
PY=$ROOT/.venv/bin/python
WORK=${MUTATE_DIR:-$ROOT/build/mutate}
JOBS=${MUTATE_JOBS:-2}
TOOLS=$WORK/tools
TREE=$WORK/tree

# mutmut and its dependencies live in a folder of their own, after the venv on sys.path: the
# venv's packages (pytest and its plugins) win, and make setup / make test never see mutmut.
if ! "$PY" - "$TOOLS" "$MUTMUT_VERSION" <<'PY' 2>/dev/null; then
import importlib.metadata, sys
sys.path.append(sys.argv[1])
found = {d.metadata['Name']: d.version for d in importlib.metadata.distributions(path=[sys.argv[1]])}
sys.exit(found.get('mutmut') != sys.argv[2])
PY
  echo "mutate: installing mutmut==$MUTMUT_VERSION into $TOOLS"
  rm -rf "$TOOLS"
  nice -n 10 "$PY" -m pip install -q --target "$TOOLS" "mutmut==$MUTMUT_VERSION" 2>&1 \
    | { grep -v "is ignored: it is neither\|dependency resolver\|requires torchvision" || true; }
fi

# The copy: the files of the commit HEAD (what others edit meanwhile in the working tree is
# left out). Only files whose content changed are rewritten, so unchanged sources keep
# their time and mutmut keeps their mutants and verdicts.
rm -rf "$WORK/head"
mkdir -p "$WORK/head" "$TREE"
git archive HEAD | tar -x -C "$WORK/head"
"$PY" - "$WORK/head" "$TREE" <<'PY'
import filecmp, pathlib, shutil, sys
head, tree = map(pathlib.Path, sys.argv[1:])
wanted = {p.relative_to(head) for p in head.rglob('*') if p.is_file()}
for rel in wanted:
    if not (tree / rel).is_file() or not filecmp.cmp(head / rel, tree / rel, shallow=False):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(head / rel, tree / rel)
for path in tree.rglob('*'):
    rel = path.relative_to(tree)
    if path.is_file() and rel.parts[0] != 'mutants' and rel not in wanted:
        path.unlink()
PY
rm -rf "$WORK/head"
"$PY" - "$TREE" "$@" <<'PY'
import pathlib, re, sys
tree, modules = pathlib.Path(sys.argv[1]), sys.argv[2:]
config = (tree / 'scripts' / 'mutmut.cfg').read_text()
if modules:
    listed = ''.join(f'    {module}\n' for module in modules)
    config = re.sub(r'^only_mutate =\n(    .*\n)+', f'only_mutate =\n{listed}', config, flags=re.M)
setup = tree / 'setup.cfg'
setup.write_text(setup.read_text() + '\n' + config)
PY

names=()
if [ "${MUTATE_RERUN:-}" = survived ]; then
  mapfile -t names < <(cd "$TREE" && "$PY" "$TREE/scripts/mutation_report.py" --survivors)
  [ ${#names[@]} -gt 0 ] || { echo "mutate: no survivors to re-run"; exit 0; }
fi

cd "$TREE"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( RANDOM % 70 + 21 ))}
nice -n 10 "$PY" - "$TOOLS" run --max-children "$JOBS" "${names[@]}" <<'PY' || true
import sys
sys.path.append(sys.argv.pop(1))
sys.argv[0] = 'mutmut'
from mutmut.__main__ import cli
cli()
PY
"$PY" "$TREE/scripts/mutation_report.py"
