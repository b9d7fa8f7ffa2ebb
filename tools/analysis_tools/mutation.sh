#!/usr/bin/env bash
# Mutation testing of citymask's core modules with mutmut 3 (docs/mutation.md).
#
#   tools/analysis_tools/mutation.sh MODULE [MODULE ...] | all | list
#
# Each module is mutated in a copy of the working tree under $MUTATION_DIR
# (default /tmp/citymask-mutation/MODULE). Prints each surviving mutant with
# its diff (also in MODULE/report.txt), then `score MODULE CAUGHT/TOTAL PCT`
# (caught: killed or timed out). Needs requirements/mutation.txt installed.
# Env: PYTHON (default .venv/bin/python), MUTATION_DIR, JOBS (default 2).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
MUTATION_DIR=${MUTATION_DIR:-/tmp/citymask-mutation}
JOBS=${JOBS:-2}

# MODULE -> "file|mutant-name glob|tests" (the fastest tests of its area)
spec() {
  case $1 in
    classes) echo "citymask/classes.py|citymask.classes.*|tests/test_classes.py" ;;
    heads) echo "citymask/surgery/heads.py|citymask.surgery.heads.*|tests/surgery/test_heads.py" ;;
    converter) echo "citymask/datasets/cityscapes_converter.py|citymask.datasets.cityscapes_converter.*|tests/datasets/test_converter_units.py tests/datasets/test_converter_pool.py" ;;
    evaluator) echo "citymask/evaluation/cityscapes_instance.py|citymask.evaluation.cityscapes_instance.*|tests/evaluation/test_cityscapes_instance.py tests/evaluation/test_evaluator_units.py tests/evaluation/test_distance_ap.py" ;;
    results_format) echo "citymask/evaluation/results_format.py|citymask.evaluation.results_format.*|tests/evaluation/test_results_format.py" ;;
    resume) echo "citymask/checkpoint.py citymask/runner_setup.py|citymask.checkpoint.x_latest_checkpoint* citymask.runner_setup.x_setup_train*|tests/test_runner_setup.py tests/test_checkpoint.py" ;;
    loading) echo "citymask/datasets/transforms/loading.py|citymask.datasets.transforms.loading.*|tests/datasets/transforms/test_loading.py" ;;
    *) return 1 ;;
  esac
}
MODULES=(classes heads converter evaluator results_format resume loading)

if [[ $# -eq 0 ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
if [[ $1 == list ]]; then
  for m in "${MODULES[@]}"; do
    IFS='|' read -r files names tests <<< "$(spec "$m")"
    printf '%-15s mutates %s (%s)\n%15s tests   %s\n' "$m" "$files" \
      "$names" '' "$tests"
  done
  exit 0
fi
[[ $1 == all ]] && set -- "${MODULES[@]}"
"$PYTHON" -c 'import mutmut' 2>/dev/null || {
  echo "error: mutmut is not installed in $PYTHON's environment; run" \
       "$PYTHON -m pip install -r requirements/mutation.txt" >&2
  exit 2
}

run_module() {
  local module=$1 files names tests work
  if ! IFS='|' read -r files names tests <<< "$(spec "$module")"; then
    echo "error: unknown module '$module'; one of: ${MODULES[*]}" >&2
    return 2
  fi
  work=$MUTATION_DIR/$module
  rm -rf "$work"
  mkdir -p "$work"
  # a copy of the working tree (mutmut writes mutants/ beside it)
  tar -C "$REPO" -cf - --exclude='./.venv*' --exclude=./.git \
    --exclude=./work_dirs --exclude=./data --exclude=./mutants \
    --exclude='__pycache__' . | tar -C "$work" -xf -
  # this module's files and tests on top of setup.cfg's [mutmut] section
  "$PYTHON" - "$work/setup.cfg" "$files" "$tests" <<'EOF'
import configparser
import sys

path, files, tests = sys.argv[1:]
cfg = configparser.ConfigParser(interpolation=None)
cfg.read(path)
cfg['mutmut']['only_mutate'] = '\n' + '\n'.join(files.split())
cfg['mutmut']['pytest_add_cli_args_test_selection'] = '\n' + '\n'.join(
    tests.split())
with open(path, 'w') as f:
    cfg.write(f)
EOF
  echo "== $module: mutating $files, tests: $tests"
  # shellcheck disable=SC2086
  (cd "$work" && "$PYTHON" -m mutmut run --max-children "$JOBS" $names \
     > "$work/mutmut-run.log" 2>&1) || {
    tail -30 "$work/mutmut-run.log" >&2
    echo "error: mutmut run failed for $module (log: $work/mutmut-run.log)" >&2
    return 1
  }
  (cd "$work" && "$PYTHON" - "$module" $names <<'EOF'
import fnmatch
import subprocess
import sys

module, patterns = sys.argv[1], sys.argv[2:]
out = subprocess.run([sys.executable, '-m', 'mutmut', 'results', '--all',
                      'true'], capture_output=True, text=True,
                     check=True).stdout
status = {}
for line in out.splitlines():
    name, _, result = line.strip().rpartition(': ')
    if name and any(fnmatch.fnmatch(name, p) for p in patterns):
        status[name] = result
# a mutant the tests fail on or time out on is caught; mutmut's "segfault"
# (exit -9 / -11) is not counted: with JOBS > 1 it was another mutant's
# pool killing the test process, not a detection (docs/mutation.md)
caught = ('killed', 'timeout')
killed = sum(s in caught for s in status.values())
total = len(status)
for name in sorted(status):
    if status[name] not in caught:
        print(f'--- {status[name]}: {name}')
        print(subprocess.run([sys.executable, '-m', 'mutmut', 'show', name],
                             capture_output=True, text=True).stdout)
pct = 100.0 * killed / total if total else float('nan')
print(f'score {module} {killed}/{total} {pct:.1f}')
EOF
  ) | tee "$work/report.txt"
}

rc=0
for module in "$@"; do
  run_module "$module" || rc=$?
done
exit $rc
