#!/usr/bin/env bash
# Mutation testing of the core with mutmut (docs/mutation.md). Not part of `make test`.
#
#   scripts/mutate.sh [GROUP ...]    the groups of scripts/mutmut.cfg (default: all, in order)
#   MUTATE_RERUN=survived scripts/mutate.sh [GROUP ...]
#                                    re-runs only the surviving mutants (after adding tests; a
#                                    plain run keeps earlier verdicts)
#   MUTATE_DIR (default build/mutate), MUTATE_JOBS (default 2): work folder and workers.
#
# mutmut writes mutated files, so each group runs on its own copy of the commit HEAD under
# MUTATE_DIR/GROUP, never on the checkout: commit the tests first. The copy keeps mutmut's
# results (mutants/): an interrupted run resumes where it stopped, and a source file that
# changed gets new mutants (only those are run again). The table of all groups is printed last.
set -euo pipefail
# Single-threaded maths: mutmut forks its workers from a process that ran torch and numpy, and
# a thread pool (OpenMP, OpenBLAS) copied by fork can leave a worker waiting on a lock forever.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1

# Stop a worker of mutmut (pid $1) that used no CPU for two minutes: mutmut's own limit counts
# CPU time, which a worker waiting on a lock never spends. SIGXCPU is mutmut's timeout verdict.
unstick() {
  declare -A last
  local pid cpu
  while kill -0 "$1" 2>/dev/null; do
    sleep 120
    while read -r pid cpu; do
      [ "${last[$pid]:-}" != "$cpu" ] || kill -XCPU "$pid" 2>/dev/null || true
      last[$pid]=$cpu
    done < <(ps -o pid=,time= --ppid "$1")
  done
}

# one function, read whole before it runs: editing this file during a run cannot derail it
main() {
cd "$(dirname "$0")/.."
ROOT=$PWD
MUTMUT_VERSION=3.8.1
PY=${VENV:-$ROOT/.venv}/bin/python
WORK=${MUTATE_DIR:-$ROOT/build/mutate}
JOBS=${MUTATE_JOBS:-2}
TOOLS=$WORK/tools
CONFIG=$ROOT/scripts/mutmut.cfg
mapfile -t all_groups < <(sed -n 's/^\[group \(.*\)\]$/\1/p' "$CONFIG")
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=("${all_groups[@]}")
for group in "${groups[@]}"; do
  printf '%s\n' "${all_groups[@]}" | grep -qx "$group" \
    || { echo "mutate: no group '$group' in scripts/mutmut.cfg (${all_groups[*]})"; exit 2; }
done

# mutmut and its dependencies live in a folder of their own, after the venv on sys.path: the
# venv's packages (pytest and its plugins) win, and make setup / make test never see mutmut.
if ! "$PY" - "$TOOLS" "$MUTMUT_VERSION" <<'PY' 2>/dev/null; then
import importlib.metadata, sys
found = {d.metadata['Name']: d.version for d in importlib.metadata.distributions(path=[sys.argv[1]])}
sys.exit(found.get('mutmut') != sys.argv[2])
PY
  echo "mutate: installing mutmut==$MUTMUT_VERSION into $TOOLS"
  rm -rf "$TOOLS"
  nice -n 10 "$PY" -m pip install -q --target "$TOOLS" "mutmut==$MUTMUT_VERSION" 2>&1 \
    | { grep -v "is ignored: it is neither\|dependency resolver\|requires" || true; }
fi

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( RANDOM % 70 + 21 ))}
mkdir -p "$WORK"
HEAD_FILES=$(mktemp -d "$WORK/head.XXXXXX")
trap 'rm -rf "$HEAD_FILES"' EXIT
git archive HEAD | tar -x -C "$HEAD_FILES"
trees=()
for group in "${groups[@]}"; do
  tree=$WORK/$group
  trees+=("$tree")
  echo "mutate: group $group in $tree"
  # the files of HEAD (what others edit meanwhile in the working tree is left out); only files
  # whose content changed are rewritten, so unchanged sources keep their mutants and verdicts
  "$PY" - "$HEAD_FILES" "$tree" "$CONFIG" "$group" <<'PY'
import configparser, filecmp, pathlib, shutil, sys
head, tree, config_path, group = sys.argv[1], pathlib.Path(sys.argv[2]), *sys.argv[3:]
head = pathlib.Path(head)
wanted = {p.relative_to(head) for p in head.rglob('*') if p.is_file()}
for rel in wanted:
    if not (tree / rel).is_file() or not filecmp.cmp(head / rel, tree / rel, shallow=False):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(head / rel, tree / rel)
for path in tree.rglob('*'):
    rel = path.relative_to(tree)
    if path.is_file() and rel.parts[0] != 'mutants' and rel not in wanted:
        path.unlink()
config = configparser.ConfigParser(interpolation=None)
config.optionxform = str
config.read(config_path)
section = dict(config['mutmut'])
section['only_mutate'] = config[f'group {group}']['modules']
section['pytest_add_cli_args_test_selection'] = config[f'group {group}']['tests']
setup = configparser.ConfigParser(interpolation=None)
setup.optionxform = str
setup.read(tree / 'setup.cfg')
setup['mutmut'] = section
with open(tree / 'setup.cfg', 'w') as f:
    setup.write(f)
PY
  names=()
  if [ "${MUTATE_RERUN:-}" = survived ]; then
    mapfile -t names < <("$PY" "$ROOT/scripts/mutation_report.py" --survivors "$tree")
    if [ ${#names[@]} -eq 0 ]; then
      echo "mutate: no survivors in group $group"
      continue
    fi
  fi
  cd "$tree"
  nice -n 10 "$PY" - "$TOOLS" run --max-children "$JOBS" "${names[@]}" <<'PY' &
import sys
sys.path.append(sys.argv.pop(1))
sys.argv[0] = 'mutmut'
from mutmut.__main__ import cli
cli()
PY
  local mutmut=$!
  unstick "$mutmut" &
  local watchdog=$!
  wait "$mutmut" || echo "mutate: mutmut stopped with status $? in group $group"
  kill "$watchdog" 2>/dev/null || true
  cd "$ROOT"
done
"$PY" "$ROOT/scripts/mutation_report.py" "${trees[@]}"
}

main "$@"
