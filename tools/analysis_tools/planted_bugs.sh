#!/usr/bin/env bash
# Three known bugs, each planted in a fresh clone of this
# repository's HEAD, and the tests of its area run: each must fail
# (docs/mutation.md). Exit 1 if a planted bug passes its tests.
#
#   tools/analysis_tools/planted_bugs.sh [swap resume fastpng]
#
# Env: PYTHON (default .venv/bin/python), WORK (default
# /tmp/citymask-planted; one clone per bug there).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
WORK=${WORK:-/tmp/citymask-planted}
[[ $# -gt 0 ]] || set -- swap resume fastpng
rc=0
for bug in "$@"; do
  w=$WORK/$bug
  rm -rf "$w" && git clone -q "$REPO" "$w" || exit 2
  case $bug in
    swap)  # truck <-> train in the Cityscapes <-> COCO table
      sed -i "s/('truck', 27, 'truck')/('truck', 27, 'train')/;
              s/('train', 31, 'train')/('train', 31, 'truck')/" \
        "$w/citymask/classes.py"
      tests="tests/test_classes.py tests/surgery tests/hooks" ;;
    resume)  # a resumed run that only loads the weights
      sed -i 's/^\(        cfg.resume, cfg.load_from = \)True/\1False/' \
        "$w/citymask/runner_setup.py"
      tests="tests/test_runner_setup.py
             tests/tools/test_train_test.py::test_sigkill_then_resume" ;;
    fastpng)  # the fast PNG path never taken
      sed -i 's/^    def _fast_png(self, path: str):$/&\n        return None/' \
        "$w/citymask/datasets/transforms/loading.py"
      tests="tests/datasets/transforms" ;;
    *) echo "error: unknown bug '$bug'; one of: swap resume fastpng" >&2
       exit 2 ;;
  esac
  if git -C "$w" diff --quiet; then
    echo "error: could not plant '$bug' (the code changed?)" >&2
    exit 2
  fi
  echo "== $bug: $(git -C "$w" diff --stat | tail -1)"
  # shellcheck disable=SC2086
  out=$(cd "$w" && PYTHONPATH=$w "$PYTHON" -m pytest -q -p no:cacheprovider \
        $tests 2>&1)
  if grep -q '^FAILED' <<< "$out"; then
    grep -E '^FAILED|^[0-9]+ (failed|passed)' <<< "$out"
  else
    echo "NOT CAUGHT: $bug passes $tests"
    rc=1
  fi
done
exit $rc
