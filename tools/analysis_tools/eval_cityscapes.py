"""Cityscapes instance-level evaluation, a drop-in for the official script.

Its numbers from the same inputs (official results format), in parallel,
writing only --out (and the --analyze files beside it); prediction files
are read as untrusted (paths inside RESULTS_DIR, regular files, size caps).
--distance adds the unofficial AP 100m / 50m from disparity/ and camera/.

Example:
    python tools/analysis_tools/eval_cityscapes.py \
        data/cityscapes/gtFine/val work_dirs/results --out result.json
"""
import argparse
import os
import os.path as osp

from citymask.cli import exit_on_error
from citymask.evaluation.analysis import (analyze_matches, format_analysis,
                                          write_analysis)
from citymask.evaluation.cityscapes_instance import (evaluate_matches,
                                                     format_table,
                                                     match_frames, summarize)
from citymask.evaluation.distance import check_stereo
from citymask.evaluation.results_format import (find_gt_files, label_id_report,
                                                read_results)
from citymask.fileio import check_writable, dump_json_atomic


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('gt_dir', help='searched recursively for '
                        '*_gtFine_instanceIds.png, e.g. gtFine/val')
    parser.add_argument('results_dir', help='predictions in the official '
                        'format: <image>_pred.txt + mask PNGs')
    parser.add_argument('--out', help='write the official result JSON here')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--distance', action='store_true', help='also AP '
                        '100m / AP 50m (unofficial) from the disparity/ and '
                        'camera/ folders beside gtFine/')
    parser.add_argument('--stereo-root', help='folder holding disparity/ and '
                        'camera/ (default: the Cityscapes root above GT_DIR)')
    parser.add_argument('--analyze', action='store_true', help='error '
                        'analysis: TP / FP / forgiven / misses by size per '
                        'class, class confusion, worst images (with --out '
                        'also cityscapes_analysis.json and plots in its '
                        'folder)')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='predictions scoring less are left out of --analyze (not of '
        'the AP); default 0.3')
    args = parser.parse_args()
    if args.out:
        check_writable(args.out, what='--out')
    gt_files = find_gt_files(args.gt_dir)
    tasks, missing = read_results(gt_files, args.results_dir)
    if missing:
        print(f'warning: {len(missing)} of {len(gt_files)} images have no '
              'prediction file; counted as images without predictions')
    if ignored := label_id_report(tasks):
        print(f'warning: {ignored}')
    if args.distance:
        check_stereo(gt_files, args.stereo_root)
    matches = match_frames(tasks, max(1, args.nproc), distance=args.distance,
                           stereo_root=args.stereo_root,
                           cross_labels=args.analyze)
    result = summarize(evaluate_matches(matches, args.distance))
    print(format_table(result))
    if args.analyze:
        analysis = analyze_matches(matches, gt_files, score_thr=args.score_thr)
        print(format_analysis(analysis))
    if args.out:
        dump_json_atomic(result, args.out)
        print(f'wrote {args.out}')
        if args.analyze:
            for path in write_analysis(analysis,
                                       osp.dirname(osp.abspath(args.out))):
                print(f'wrote {path}')


if __name__ == '__main__':
    main()
