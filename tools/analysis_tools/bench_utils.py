"""What the benchmark tools share: flags, Markdown tables, timing."""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

from citymask.testing.mini_cityscapes import add_scene_args, make_benchmark_set

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def at_least(low):
    """An argparse type: an integer of at least ``low``."""
    def parse(text):
        if not text.isdigit() or int(text) < low:
            raise argparse.ArgumentTypeError(f'{text!r}: give an integer >= '
                                             f'{low}')
        return int(text)
    return parse


def make_parser(doc, num_images, distribution=True, flag='--num-images'):
    """A tool's parser: its docstring as help; ``--work-dir``, ``flag``
    (how many frames) and the generated frames' size (and distribution)."""
    parser = argparse.ArgumentParser(
        description=doc.split('\n\n')[0], epilog=doc.split('\n\n', 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', help='generated data, reused '
                        '(default: a new temporary folder)')
    parser.add_argument(flag, type=at_least(1), default=num_images,
                        help=f'generated frames (default: {num_images})')
    add_scene_args(parser, distribution)
    return parser


def benchmark_set(args, prefix):
    """``(root, {format: annotations})`` of the generated frames in
    ``--work-dir`` (default: a new temporary folder); mmdet's scope set."""
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    init_default_scope('mmdet')
    return make_benchmark_set(args.work_dir or tempfile.mkdtemp(
        prefix=prefix), args.num_images, args.width, args.height,
        getattr(args, 'distribution', 'simple'))


def table(header, rows):
    """Print a Markdown table, a row as soon as ``rows`` yields it."""
    print('\n| ' + ' | '.join(header) + ' |\n' + '|---' * len(header) + '|')
    for row in rows:
        print('| ' + ' | '.join(map(str, row)) + ' |', flush=True)


def rate(dataset, n):
    """Items per second of ``dataset`` on one thread, after one untimed."""
    import cv2
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    dataset[0]  # imports, caches
    start = time.perf_counter()
    for i in range(n):
        dataset[i % len(dataset)]
    seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return n / seconds


def run_tool(*args, env=None, **kwargs):
    """Wall seconds of ``python ARGS`` with the repository importable;
    exits with its stderr if it fails."""
    path = os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')]))
    start = time.perf_counter()
    res = subprocess.run([sys.executable, *args], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=path,
                                             **(env or {})), **kwargs)
    if res.returncode:
        sys.exit(f'{" ".join(args)[:200]} failed:\n{res.stderr}')
    return time.perf_counter() - start
