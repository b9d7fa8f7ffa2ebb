"""Evaluate the predictions tools/test.py --out saved, with the config's
own test metrics, without running the model; as mmdet's eval_metric.py,
but --cfg-options data_root=... reaches the dataset and the evaluators,
and a pickle that would run code is refused.

Example:
    python tools/analysis_tools/eval_metric.py CONFIG work_dirs/preds.pkl
"""
import argparse

from citymask.cli import exit_on_error, parse_tool_args
from citymask.config import load_config


@exit_on_error
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the config the predictions were '
                        'made with')
    parser.add_argument('pkl_results', help='the .pkl of tools/test.py --out')
    args = parse_tool_args(parser)  # + --cfg-options, --launcher
    cfg = load_config(args.config, args.cfg_options)
    from citymask.evaluation.offline import evaluate_saved
    for key, value in evaluate_saved(cfg, args.pkl_results).items():
        print(f'{key}: {value}')


if __name__ == '__main__':
    main()
