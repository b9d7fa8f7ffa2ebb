"""The rehearsal: the path a user walks, end to end, with the real tools
(generate, convert, stand-in COCO checkpoint, surgery, ``dist_train.sh``,
``dist_test.sh``, submission, check, infer). The table's figures come from
what the tools write (COCO JSON, mmengine's ``vis_data/scalars.json`` and
metric JSON, the submission, ``preds/``), not from their log text.
"""
import importlib.metadata
import json
import os
import os.path as osp
import shutil
import socket
import statistics
import subprocess
import sys
import time
from glob import glob
from typing import List, Optional, Sequence

from .errors import CitymaskError
from .visualization import read_scalars

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MARKER = '.citymask-rehearsal'  # only a work dir holding it is emptied
SPLITS = ('train', 'val', 'test')
# config, frame width and height, train/val/test frames, iterations: on a
# CPU the mini config at `make demo` size, on GPUs the main job's config
SIZES = {'cpu': ('configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py',
                 (512, 256), (48, 12, 4), 300),
         'gpu': ('configs/maskrcnn_r50_fpn_cityscapes_ft.py',
                 (2048, 1024), (50, 10, 5), 200)}


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def files(pattern: str) -> int:
    return len(glob(pattern, recursive=True))


def train_figures(work_dir: str, imgs_per_iter: int) -> str:
    """Loss, lr, img/s, data time and memory from scalars.json; medians
    without the first logged interval (warm-up) if there are more."""
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]  # not val's
    t, data = (statistics.median(r[k] for r in rows[1:] or rows)
               for k in ('time', 'data_time'))
    memory = [r['memory'] for r in rows if 'memory' in r]
    return (f'loss {rows[0]["loss"]:.4g} -> {rows[-1]["loss"]:.4g}, lr '
            f'{rows[-1]["lr"]:.4g}, {imgs_per_iter / t:.3g} img/s ({t:.3g} '
            f's/iter, data {data:.3g} s)' +
            (f', memory {max(memory)} MB' if memory else ''))


def test_figures(work_dir: str, procs: int) -> str:
    """Mask AP, AP50 (not with ``--format-only``) and img/s (``time``: an
    iteration's mean, one image a process) from the metric JSON mmengine's
    LoggerHook dumps after a test, ``TIMESTAMP/TIMESTAMP.json``."""
    run = sorted(glob(osp.join(work_dir, '[0-9]*_[0-9]*', '')))[-1][:-1]
    m = read_json(osp.join(run, osp.basename(run) + '.json'))
    return (f'mask AP {100 * m["cityscapes/mAP"]:.1f}, AP50 '
            f'{100 * m["cityscapes/AP@50"]:.1f}, ' if 'cityscapes/mAP' in m
            else '') + f'{procs / m["time"]:.3g} img/s'


def coco_figures(ann_dir: str) -> str:
    cocos = [read_json(f'{ann_dir}/instancesonly_filtered_gtFine_{s}.json')
             for s in SPLITS]
    return f'{sum(len(c["annotations"]) for c in cocos)} instances; ' \
        'images ' + ', '.join(f'{s} {len(c["images"])}'
                              for s, c in zip(SPLITS, cocos))


def steps(work: str, gpus: int = 0, iters: Optional[int] = None,
          frames: Optional[Sequence[int]] = None,
          batch_size: Optional[int] = None, cfg_options: Sequence[str] = (),
          python: str = sys.executable) -> List[tuple]:
    """``(name, command, figures())`` of each step, writing to
    ``work``; the other arguments are tools/rehearse.py's flags."""
    cfg, (width, height), default_frames, default_iters = SIZES[
        'gpu' if gpus else 'cpu']
    iters, frames = iters or default_iters, frames or default_frames
    procs, root = max(gpus, 1), f'{work}/cityscapes'
    coco, ckpt = f'{work}/coco_standin.pth', f'{work}/coco_cityscapes.pth'
    trained = f'{work}/train/iter_{iters}.pth'
    test_images = f'{root}/leftImg8bit/test'
    opts = ['--cfg-options', f'data_root={root}/', *cfg_options]
    if batch_size is None:
        from .config import load_config
        batch_size = load_config(osp.join(REPO, cfg)).train_dataloader[
            'batch_size']
    else:
        opts.append(f'train_dataloader.batch_size={batch_size}')
    w = {k: f'{work}/{k}'
         for k in ('train', 'test', 'submit', 'infer', 'submission')}
    return [
        ('data', [python, 'tools/dataset_converters/make_mini_cityscapes.py',
                  root, '--width', str(width), '--height', str(height),
                  *(a for s, n in zip(SPLITS, frames)
                    for a in (f'--{s}', str(n)))],
         lambda: f'{files(root + "/leftImg8bit/*/*/*.png")} frames '
         f'{width}x{height}'),
        ('convert', [python, 'tools/dataset_converters/cityscapes.py', root,
                     '--nproc', str(os.cpu_count() or 1)],
         lambda: coco_figures(f'{root}/annotations')),
        ('checkpoint', [python, 'tools/misc/make_coco_standin.py', cfg, coco],
         lambda: f'stand-in with random weights, {coco}'),
        ('surgery', [python, 'tools/surgery.py', coco, ckpt],
         lambda: f'{osp.getsize(ckpt) / 2**20:.0f} MiB, {ckpt}'),
        ('train', ['bash', 'tools/dist_train.sh', cfg, str(procs),
                   '--work-dir', w['train'], '--auto-scale-lr'] +
         (['--amp'] if gpus else []) + opts + [
             f'load_from={ckpt}', f'train_cfg.max_iters={iters}',
             f'train_cfg.val_interval={iters}',
             f'default_hooks.checkpoint.interval={iters}',
             f'default_hooks.logger.interval={max(1, iters // 10)}'],
         lambda: train_figures(w['train'], batch_size * procs)),
        ('test', ['bash', 'tools/dist_test.sh', cfg, trained, str(procs),
                  '--work-dir', w['test'], *opts],
         lambda: test_figures(w['test'], procs)),
        ('submit', [python, 'tools/test.py', cfg, trained, '--split', 'test',
                    '--format-only', '--outfile-prefix', w['submission'],
                    '--work-dir', w['submit'], *opts],
         lambda: f'{files(w["submission"] + "/**/*_pred.txt")} prediction '
         f'files, {test_figures(w["submit"], 1)}'),
        ('check', [python, 'tools/check_submission.py',
                   w['submission'] + '.zip', '--images', test_images],
         lambda: 'valid'),  # else its exit status is 1
        ('infer', [python, 'tools/infer.py', test_images, cfg, trained,
                   '--out', w['infer'], '--cityscapes-format', '--device',
                   'cuda' if gpus else 'cpu', *opts],
         lambda: f'{files(w["infer"] + "/preds/**/*.json")} images')]


def rehearse(work_dir: str, gpus: int = 0, python: str = sys.executable,
             **sizes) -> List[tuple]:
    """Run the :func:`steps` in ``work_dir`` (emptied first if a rehearsal
    wrote it), print one table (also when a step fails) and return its rows
    ``(step, seconds, figures)``; a failed step raises its one line."""
    work = osp.abspath(work_dir)
    if osp.isdir(work) and os.listdir(work):
        if not osp.exists(osp.join(work, MARKER)):
            raise CitymaskError(f'{work} is not empty and no rehearsal wrote '
                                'it; choose a new --work-dir (nothing was '
                                'deleted)')
        shutil.rmtree(work)
    todo, rows = steps(work, gpus, python=python, **sizes), []
    os.makedirs(f'{work}/logs')
    open(f'{work}/{MARKER}', 'w').close()
    # the repo on PYTHONPATH, a free port for torchrun; on a CPU one OpenMP
    # thread unless set (on a busy machine, iterations 3.5x faster)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        env = dict(os.environ, PYTHON=python, PORT=str(s.getsockname()[1]),
                   PYTHONPATH=os.pathsep.join(
                       filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    if not gpus:
        env.update(CUDA_VISIBLE_DEVICES='',
                   OMP_NUM_THREADS=env.get('OMP_NUM_THREADS', '1'))
    print(f'rehearsal on {os.cpu_count()} CPU cores, {gpus} GPUs, '
          f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; Python '
          f'{sys.version.split()[0]}, ' + ', '.join(
              f'{p} {importlib.metadata.version(p)}' for p in
              ('torch', 'mmcv', 'mmdet', 'mmengine')), flush=True)
    try:
        for i, (name, cmd, figures) in enumerate(todo, 1):
            print(f'[{i}/{len(todo)}] {name}: ' + ' '.join(
                'python' if a == python else a for a in cmd).replace(
                    work, 'WORK'), flush=True)
            log = f'{work}/logs/{name}.log'
            start = time.perf_counter()
            with open(log, 'w') as f:
                rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f,
                                    stderr=subprocess.STDOUT).returncode
            seconds = time.perf_counter() - start
            try:
                if rc:  # the tool's last `error:` line, else its last line
                    with open(log, errors='replace') as f:
                        out = [ln.strip() for ln in f if ln.strip()]
                    why = [ln[7:] for ln in out if ln.startswith('error: ')]
                    line = (why or out or ['no output'])[-1][:300]
                    raise CitymaskError(f'{line} (exit status {rc})')
                rows.append((name, seconds, figures()))
            except (CitymaskError, OSError, LookupError, ValueError) as e:
                rows.append((name, seconds, 'FAILED'))
                why = e if isinstance(e, CitymaskError) else (
                    f'its output could not be read: {e!r}')
                raise CitymaskError(f"step '{name}' failed: {why} (full log: "
                                    f'{log})') from None
    finally:
        print(f'\nWORK = {work}\n' + '\n'.join(
            f'{n:<10}  {s:>7}  {f}'.rstrip() for n, s, f in
            [('step', 's', 'figures'), *((n, f'{s:.1f}', f) for n, s, f in
             rows + [('total', sum(r[1] for r in rows), '')])]), flush=True)
    return rows
