"""Check a Cityscapes instance-level submission before uploading it.

Lists every problem the benchmark server would reject
(citymask.evaluation.submission). Exit status 0: valid; 1: problems
listed; 2: the folder, zip or image folder can't be read.

Example:
    python tools/check_submission.py work_dirs/submission.zip \
        --images data/cityscapes/leftImg8bit/test
"""
import argparse
import sys

from citymask.cli import exit_on_error
from citymask.evaluation.submission import check_submission


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('results', help='results folder or its .zip')
    parser.add_argument('--images', metavar='LEFTIMG8BIT_TEST_DIR',
                        help='the test images (leftImg8bit/test): each needs '
                        'a prediction file, masks need its size')
    args = parser.parse_args()
    report = check_submission(args.results, args.images)
    for problem in report.problems:
        print(f'  - {problem}')
    print(report.summary())
    sys.exit(0 if report.ok else 1)


if __name__ == '__main__':
    main()
