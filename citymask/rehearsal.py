"""A rehearsal of the main job: what to run first on a new node.

Every step of the main job runs here as the command README gives users,
on this machine, on every visible GPU, at full size (2048x1024 frames),
scaled down in frame and iteration counts so that it ends in minutes:

1. data: generated frames (``make_mini_cityscapes.py``), or the first
   frames of a real Cityscapes tree (``--data``), linked into the work dir;
2. convert: ``tools/dataset_converters/cityscapes.py --nproc CORES``;
3. checkpoint: the model zoo COCO Mask R-CNN (``--checkpoint``), else a
   stand-in with random weights (``tools/misc/make_coco_standin.py``);
4. surgery: ``tools/surgery.py``;
5. train: ``tools/dist_train.sh`` for K iterations (``--amp`` on GPUs);
6. test: ``tools/dist_test.sh`` with the Cityscapes metric;
7. submission: ``tools/test.py --split test --format-only``;
8. infer: ``tools/infer.py`` on a folder of images, when it exists.

It ends with one table (wall time, throughput, peak GPU memory, outcome
per step). The first failing step stops it with one line naming the step
and what to do; every step's full output is in ``WORK_DIR/logs/``. Without
a GPU (or with ``--device cpu``) the same steps run at the CPU size of the
mini config.
"""
import importlib.metadata
import json
import os
import os.path as osp
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from glob import glob
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .classes import IMG_SUFFIX, POLYGONS_SUFFIX
from .errors import CitymaskError

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SPLITS = ('train', 'val', 'test')
# The work dir holds this file once a rehearsal used it; only such a folder
# is emptied by the next rehearsal.
MARKER = '.citymask-rehearsal'


@dataclass
class Plan:
    """What the rehearsal runs, and at which size.

    Attributes:
        device: ``cuda`` or ``cpu``.
        gpus: Processes for ``dist_train.sh`` / ``dist_test.sh`` (the
            visible GPUs; 1 on a CPU).
        cores: Converter workers (the available CPU cores).
        config: Training config.
        width: Generated frame width.
        height: Generated frame height.
        frames: Frames per split.
        iters: Training iterations.
    """
    device: str
    gpus: int
    cores: int
    config: str
    width: int
    height: int
    frames: Dict[str, int]
    iters: int

    @property
    def amp(self) -> bool:
        return self.device == 'cuda'


# Sizes at the default budget: on one GPU the main job's own config and
# frame size (>= 50 frames converted, >= 100 iterations); on a CPU the mini
# config at the size the demo uses, with few frames and iterations.
DEFAULTS = {
    'cuda': dict(budget=8.0,
                 config='configs/maskrcnn_r50_fpn_cityscapes_ft.py',
                 width=2048, height=1024, iters=200,
                 frames=dict(train=50, val=10, test=5)),
    'cpu': dict(budget=1.5,
                config='configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py',
                width=512, height=256, iters=2,
                frames=dict(train=4, val=2, test=1)),
}


def make_plan(device: str, gpus: int, cores: int,
              budget: Optional[float] = None) -> Plan:
    """The sizes of a rehearsal.

    Args:
        device: ``cuda`` or ``cpu``.
        gpus: Visible GPUs (ignored on a CPU).
        cores: Available CPU cores.
        budget: Minutes to fit in; frame and iteration counts scale
            linearly with it (default: 8 on GPUs, 1.5 on a CPU).
    """
    d = DEFAULTS[device]
    scale = 1.0 if budget is None else budget / d['budget']
    if scale <= 0:
        raise CitymaskError(f'--budget must be > 0 minutes, got {budget}')
    return Plan(device=device, gpus=gpus if device == 'cuda' else 1,
                cores=cores, config=d['config'], width=d['width'],
                height=d['height'], iters=max(2, round(d['iters'] * scale)),
                frames={s: max(1, round(n * scale))
                        for s, n in d['frames'].items()})


class GpuMemory:
    """Peak memory in use on the GPUs while a step runs, sampled with
    ``nvidia-smi`` every 100 ms (what every process of the step holds,
    CUDA context and cached blocks included), above what was in use when
    the rehearsal started.

    Args:
        baseline: MiB in use per GPU index before the rehearsal.
    """

    def __init__(self, baseline: Dict[str, int]):
        self.baseline = baseline
        self.peak = 0
        self._proc: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None

    @staticmethod
    def query() -> Optional[Dict[str, int]]:
        """MiB in use per GPU index now, or None without ``nvidia-smi``."""
        try:
            out = subprocess.run(_SMI, capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        rows = [_parse_smi(line) for line in out.stdout.splitlines()]
        return dict(row for row in rows if row)

    def __enter__(self) -> 'GpuMemory':
        self.peak = 0
        self._proc = subprocess.Popen(_SMI + ['-lms', '100'],
                                      stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            parsed = _parse_smi(line)
            if parsed:
                idx, used = parsed
                self.peak = max(self.peak,
                                used - self.baseline.get(idx, 0))

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.wait()
        self._thread.join(timeout=5)


_SMI = ['nvidia-smi', '--query-gpu=index,memory.used',
        '--format=csv,noheader,nounits']


def _parse_smi(line: str):
    parts = [p.strip() for p in line.split(',')]
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


@dataclass
class Row:
    """One line of the final table."""
    step: str
    seconds: float
    throughput: str = '-'
    memory: str = '-'
    outcome: str = ''


@dataclass
class Step:
    """A step: a command (or, for linking a real tree, a function), what
    it processes, and how to read its outcome.

    Attributes:
        name: Short name (the table's first column).
        hint: What to do when it fails.
        cmd: The command, as README gives it.
        func: Instead of a command: a function returning the outcome.
        count: Frames or images the step processes (for throughput).
        unit: ``frames/s`` or ``img/s``.
        outcome: Reads the step's output (the log text) into the outcome
            cell; raises :class:`StepFailed` if the result is missing.
        rate: Reads a steady rate (items/s) from the log, or None.
        skip: Why the step is skipped (its outcome), or None to run it.
    """
    name: str
    hint: str
    cmd: Optional[List[str]] = None
    func: Optional[Callable[[], str]] = None
    count: int = 0
    unit: str = ''
    outcome: Callable[[str], str] = lambda log: 'ok'
    rate: Callable[[str], Optional[float]] = lambda log: None
    skip: Optional[str] = None


class StepFailed(CitymaskError):
    """A step failed; the message says why."""


def available_cores() -> int:
    """The CPU cores this process may use (see the converter's)."""
    from .datasets.cityscapes_converter import available_cores as cores
    return cores()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _why(log: str) -> str:
    """The line of a failed command's output that says what went wrong:
    a tool's ``error:`` line, else the last line (e.g. an exception)."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith('error: ')]
    line = (errors[-1][len('error: '):] if errors else
            lines[-1] if lines else 'no output')
    return line if len(line) <= 300 else line[:297] + '...'


def train_rate(log: str, imgs_per_iter: int) -> Optional[float]:
    """Images/s of training from mmengine's log lines (its ``time`` is the
    mean over the logging interval); the first interval (warm-up) is left
    out when there are more."""
    times = [float(t) for t in re.findall(
        r'Iter\(train\) .*?\btime: ([\d.]+)', log)]
    if len(times) > 1:
        times = times[1:]
    if not times:
        return None
    return imgs_per_iter / statistics.median(times)


def test_rate(log: str, imgs_per_iter: int) -> Optional[float]:
    """Images/s of a test run from mmengine's epoch line (its ``time`` is
    the mean per iteration: forward and metric processing)."""
    # by iterations, mmengine's end-of-test line reads Iter(test) [N/N]
    found = re.findall(r'(?:Epoch|Iter)\(test\) .*?\btime: ([\d.]+)', log)
    if not found or float(found[-1]) <= 0:
        return None
    return imgs_per_iter / float(found[-1])


def _losses(log: str) -> List[float]:
    return [float(v) for v in re.findall(
        r'Iter\(train\) .*?\bloss: ([\d.]+(?:e[-+]?\d+)?)', log)]


def _load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _need(path: str, what: str) -> str:
    if not osp.exists(path):
        raise StepFailed(f'{what} was not written ({path} is missing)')
    return path


def link_frames(src: str, dst: str, frames: Dict[str, int]) -> str:
    """Link the first frames of each split of a real Cityscapes tree into
    ``dst`` (the tree itself is not touched; converted annotations go to
    ``dst/annotations``).

    Args:
        src: Cityscapes root with ``leftImg8bit/`` and ``gtFine/``.
        dst: Folder to create the linked tree in.
        frames: Frames to take per split (sorted by file name).
    """
    from .datasets.cityscapes_converter import find_samples
    counts = []
    for split, n in frames.items():
        pairs = find_samples(src, split,
                             None if split == 'test' else POLYGONS_SUFFIX)
        for img, _ in pairs[:n]:
            rel = osp.relpath(img, osp.join(src, 'leftImg8bit'))
            stem = rel[:-len(IMG_SUFFIX)]
            gts = glob(osp.join(src, 'gtFine', stem + '_gtFine_*'))
            for path, sub in [(img, 'leftImg8bit')] + [(g, 'gtFine')
                                                       for g in gts]:
                target = osp.join(dst, sub, osp.relpath(
                    path, osp.join(src, sub)))
                os.makedirs(osp.dirname(target), exist_ok=True)
                os.symlink(osp.abspath(path), target)
        counts.append(f'{split} {min(n, len(pairs))}')
    return f'first frames of {src} linked: ' + ', '.join(counts)


class Rehearsal:
    """The steps of the main job on this machine (see the module doc).

    Args:
        plan: Sizes and devices.
        work_dir: Everything is written here (emptied first if an earlier
            rehearsal wrote it; any other non-empty folder is refused).
        data: A real Cityscapes root to take frames from, or None to
            generate them.
        checkpoint: The model zoo COCO Mask R-CNN, or None for a stand-in.
        python: The interpreter the tools run with.
        echo: Where progress lines go.
    """

    def __init__(self, plan: Plan, work_dir: str, data: Optional[str] = None,
                 checkpoint: Optional[str] = None,
                 python: str = sys.executable,
                 echo: Callable[[str], None] = print):
        self.plan = plan
        self.work = osp.abspath(work_dir)
        self.data = osp.abspath(data) if data else None
        self.checkpoint = osp.abspath(checkpoint) if checkpoint else None
        self.python = python
        self.echo = echo
        self.rows: List[Row] = []
        self.root = osp.join(self.work, 'cityscapes')
        self.batch = 1

    # ---- set-up ----------------------------------------------------------
    def _prepare_work_dir(self) -> None:
        if osp.isdir(self.work) and os.listdir(self.work):
            if not osp.exists(osp.join(self.work, MARKER)):
                raise CitymaskError(
                    f'{self.work} is not empty and no rehearsal wrote it; '
                    'choose a new --work-dir (nothing was deleted)')
            shutil.rmtree(self.work)
        os.makedirs(osp.join(self.work, 'logs'))
        with open(osp.join(self.work, MARKER), 'w'):
            pass

    def env(self) -> Dict[str, str]:
        """The tools' environment: the caller's, with the repo on
        ``PYTHONPATH`` (extended, never replaced), ``PYTHON`` for the
        launchers and a free port for torchrun. In CPU mode no GPUs, and
        one OpenMP thread per process unless ``OMP_NUM_THREADS`` is set
        (as torchrun does for several processes): on a shared machine,
        torch's threads waiting for each other made a training iteration
        3.5x slower (measured under load 16 on 2 cores)."""
        path = os.environ.get('PYTHONPATH')
        env = dict(os.environ, PYTHON=self.python, PORT=str(_free_port()),
                   PYTHONPATH=REPO + (os.pathsep + path if path else ''))
        if self.plan.device == 'cpu':
            env['CUDA_VISIBLE_DEVICES'] = ''
            env.setdefault('OMP_NUM_THREADS', '1')
        return env

    # ---- the steps -------------------------------------------------------
    def steps(self) -> List[Step]:
        """The steps, in order, with the commands README gives users."""
        p, w, py = self.plan, self.work, self.python
        root = self.root
        frames = sum(p.frames.values())
        cfg = p.config
        data_opt = f'data_root={root}/'
        coco = self.checkpoint or osp.join(w, 'coco_standin.pth')
        cs_ckpt = osp.join(w, 'coco_cityscapes.pth')
        trained = osp.join(w, 'train', f'iter_{p.iters}.pth')
        imgs = self.batch * p.gpus
        steps = []

        if self.data:
            steps.append(Step(
                'data', 'point --data at a Cityscapes root holding '
                'leftImg8bit/ and gtFine/ (or leave --data out to generate '
                'frames)', func=lambda: link_frames(self.data, root,
                                                    p.frames)))
        else:
            steps.append(Step(
                'data', f'check free disk space in {w}',
                cmd=[py, 'tools/dataset_converters/make_mini_cityscapes.py',
                     root, '--width', str(p.width), '--height', str(p.height),
                     *[a for s in SPLITS for a in (f'--{s}',
                                                   str(p.frames[s]))]],
                count=frames, unit='frames/s',
                outcome=lambda log: (
                    f'{frames} frames {p.width}x{p.height} generated (' +
                    ', '.join(f'{s} {p.frames[s]}' for s in SPLITS) + ')')))
        steps.append(Step(
            'convert', 'fix or remove the file the error names, then run '
            'again', cmd=[py, 'tools/dataset_converters/cityscapes.py', root,
                          '--nproc', str(p.cores)],
            count=frames, unit='frames/s', outcome=self._converted))
        if self.checkpoint:
            steps.append(Step(
                'checkpoint', '', func=lambda: (
                    f'model zoo file {_need(coco, "--checkpoint")}')))
        else:
            steps.append(Step(
                'checkpoint', 'the model cannot be built: check the install '
                '(python -c "import mmdet, mmcv.ops"; README "Installation")',
                cmd=[py, 'tools/misc/make_coco_standin.py', cfg, coco],
                outcome=lambda log: (
                    f'stand-in, random weights ({osp.basename(coco)}); pass '
                    '--checkpoint for the model zoo file')))
        steps.append(Step(
            'surgery', 'pass --checkpoint a COCO Mask R-CNN (mmdet, '
            'maskrcnn-benchmark or detectron2 format; README "Fine-tuning '
            'from COCO")', cmd=[py, 'tools/surgery.py', coco, cs_ckpt],
            outcome=lambda log: 'Cityscapes heads: ' + osp.basename(
                _need(cs_ckpt, 'the converted checkpoint'))))
        log_every = max(1, p.iters // 10)
        train = ['bash', 'tools/dist_train.sh', cfg, str(p.gpus),
                 '--work-dir', osp.join(w, 'train'), '--auto-scale-lr']
        if p.amp:
            train.append('--amp')
        train += ['--cfg-options', data_opt, f'load_from={cs_ckpt}',
                  f'train_cfg.max_iters={p.iters}',
                  f'train_cfg.val_interval={p.iters}',
                  f'default_hooks.checkpoint.interval={p.iters}',
                  f'default_hooks.logger.interval={log_every}']
        steps.append(Step(
            'train', 'read the log; check that this node runs CUDA '
            '(python -c "import torch; print(torch.cuda.is_available())") '
            'and mmcv has its CUDA ops (README "Installation"); out of '
            'memory: a smaller --budget does not help, free the GPUs',
            cmd=train, count=p.iters * imgs, unit='img/s',
            outcome=lambda log: self._trained(log, trained),
            rate=lambda log: train_rate(log, imgs)))
        steps.append(Step(
            'test', 'read the log; tools/test.py must be able to load the '
            'checkpoint train wrote',
            cmd=['bash', 'tools/dist_test.sh', cfg, trained, str(p.gpus),
                 '--work-dir', osp.join(w, 'test'), '--cfg-options',
                 data_opt],
            count=p.frames['val'], unit='img/s', outcome=self._tested,
            rate=lambda log: test_rate(log, p.gpus)))
        submission = osp.join(w, 'submission')
        steps.append(Step(
            'submission', 'read the log (README "Testing and evaluation")',
            cmd=[py, 'tools/test.py', cfg, trained, '--split', 'test',
                 '--format-only', '--outfile-prefix', submission,
                 '--work-dir', osp.join(w, 'submit'), '--cfg-options',
                 data_opt],
            count=p.frames['test'], unit='img/s',
            outcome=lambda log: self._submitted(submission),
            rate=lambda log: test_rate(log, 1)))
        infer_dir = osp.join(w, 'infer_input')
        steps.append(Step(
            'infer', 'read the log (README "Tools": tools/infer.py)',
            cmd=[py, 'tools/infer.py', infer_dir, cfg, trained, '--out',
                 osp.join(w, 'infer')] + (['--device', 'cuda']
                                          if p.device == 'cuda' else []),
            count=p.frames['test'], unit='img/s',
            outcome=lambda log: (
                f'{p.frames["test"]} test-split images: '
                f'{osp.join(w, "infer")}'),
            skip=(None if osp.isfile(osp.join(REPO, 'tools', 'infer.py'))
                  else 'skipped: tools/infer.py not present')))
        return steps

    # ---- reading outcomes ------------------------------------------------
    def _converted(self, log: str) -> str:
        ann_dir = osp.join(self.root, 'annotations')
        parts, instances = [], 0
        for split in SPLITS:
            coco = _load_json(_need(
                osp.join(ann_dir, f'instancesonly_filtered_gtFine_{split}'
                         '.json'), f'the {split} annotations'))
            parts.append(f'{split} {len(coco["images"])}')
            instances += len(coco['annotations'])
        return (f'{instances} instances in ' + ', '.join(parts) +
                f' frames (--nproc {self.plan.cores})')

    def _trained(self, log: str, ckpt: str) -> str:
        _need(ckpt, 'the last checkpoint')
        losses = _losses(log)
        loss = (f', loss {losses[0]:.3g} -> {losses[-1]:.3g}'
                if losses else '')
        amp = 'AMP fp16' if self.plan.amp else 'fp32'
        return (f'{self.plan.iters} iterations on {self.plan.gpus} '
                f'{"GPU" if self.plan.device == "cuda" else "CPU process"}'
                f'{"s" if self.plan.gpus > 1 else ""}, {amp}{loss}')

    def _tested(self, log: str) -> str:
        result = _load_json(_need(
            osp.join(self.work, 'test', 'cityscapes',
                     'resultInstanceLevelSemanticLabeling.json'),
            'the Cityscapes result'))['averages']
        return (f'mask AP {100 * result["allAp"]:.1f}, AP50 '
                f'{100 * result["allAp50%"]:.1f} on '
                f'{self.plan.frames["val"]} val frames')

    def _submitted(self, folder: str) -> str:
        path = _need(folder + '.zip', 'the submission zip')
        with zipfile.ZipFile(path) as zf:
            preds = [n for n in zf.namelist() if n.endswith('pred.txt')]
        return f'{osp.basename(path)}: {len(preds)} prediction file(s)'

    # ---- running ---------------------------------------------------------
    def _prepare_infer_input(self) -> None:
        """A flat folder of the test split's images for ``infer``."""
        folder = osp.join(self.work, 'infer_input')
        os.makedirs(folder, exist_ok=True)
        for img in sorted(glob(osp.join(self.root, 'leftImg8bit', 'test',
                                        '*', '*' + IMG_SUFFIX))):
            os.symlink(osp.realpath(img), osp.join(folder, osp.basename(img)))

    def run_step(self, index: int, step: Step, total: int,
                 memory: Optional[GpuMemory]) -> Row:
        """Run one step; return its row or raise :class:`StepFailed`."""
        label = f'[{index}/{total}] {step.name}'
        if step.skip:
            self.echo(f'{label}: {step.skip}')
            return Row(step.name, 0.0, outcome=step.skip)
        if step.name == 'infer':
            self._prepare_infer_input()
        log_path = osp.join(self.work, 'logs', f'{index}_{step.name}.log')
        self.echo(f'{label}: ' + (' '.join(_short(a, self.work)
                                           for a in step.cmd)
                                  if step.cmd else 'in-process'))
        start = time.perf_counter()
        log = ''
        try:
            if step.func is not None:
                outcome = step.func()
                with open(log_path, 'w') as f:
                    f.write(outcome + '\n')
                seconds = time.perf_counter() - start
            else:
                with open(log_path, 'w') as f, \
                        (memory or _Nothing()):
                    proc = subprocess.run(step.cmd, cwd=REPO, env=self.env(),
                                          stdout=f, stderr=subprocess.STDOUT)
                seconds = time.perf_counter() - start
                with open(log_path, errors='replace') as f:
                    log = f.read()
                if proc.returncode != 0:
                    raise StepFailed(f'{_why(log)} (exit status '
                                     f'{proc.returncode})')
                outcome = step.outcome(log)
        except (StepFailed, CitymaskError, OSError) as e:
            seconds = time.perf_counter() - start
            self.rows.append(Row(step.name, seconds, outcome='FAILED'))
            hint = f'; {step.hint}' if step.hint else ''
            raise StepFailed(f"step '{step.name}' failed: {e}{hint} "
                             f'(full log: {log_path})') from None
        row = Row(step.name, seconds, outcome=outcome)
        if step.count:
            rate = step.rate(log) if log else None
            overall = step.count / seconds
            row.throughput = (f'{rate:.3g} {step.unit} ({overall:.3g} '
                              'incl. start-up)' if rate else
                              f'{overall:.3g} {step.unit}')
        if memory is not None and step.cmd:
            row.memory = f'{memory.peak / 1024:.1f} GiB'
        self.echo(f'{" " * len(label)}  {seconds:.1f} s: {outcome}')
        return row

    def run(self) -> List[Row]:
        """Run every step; the first failure raises :class:`StepFailed`
        (the rows so far are in ``self.rows``)."""
        self._prepare_work_dir()
        memory = None
        if self.plan.device == 'cuda':
            baseline = GpuMemory.query()
            memory = GpuMemory(baseline) if baseline is not None else None
        self.batch = _train_batch_size(self.plan.config)
        steps = self.steps()
        for i, step in enumerate(steps, 1):
            self.rows.append(self.run_step(i, step, len(steps), memory))
        return self.rows


class _Nothing:

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _short(arg: str, work: str) -> str:
    """A command argument with the work dir shortened, for progress lines.
    """
    return arg.replace(work, 'WORK') if isinstance(arg, str) else str(arg)


def _train_batch_size(config: str) -> int:
    from .config import load_config
    return int(load_config(osp.join(REPO, config)).train_dataloader
               .batch_size)


def machine_summary(plan: Plan) -> str:
    """One line: cores, GPUs, versions (for the table's heading)."""
    versions = []
    for pkg in ('torch', 'mmcv', 'mmdet', 'mmengine', 'numpy'):
        try:
            versions.append(f'{pkg} {importlib.metadata.version(pkg)}')
        except importlib.metadata.PackageNotFoundError:
            versions.append(f'{pkg} missing')
    gpus = 'no GPU (CPU mode)'
    if plan.device == 'cuda':
        import torch
        names = [torch.cuda.get_device_name(i) for i in range(plan.gpus)]
        gpus = f'{plan.gpus} GPU{"s" if plan.gpus > 1 else ""} ' + (
            f'({names[0]})' if len(set(names)) == 1 else f'({names})')
    return (f'{plan.cores} CPU cores, {gpus}; Python '
            f'{sys.version.split()[0]}, ' + ', '.join(versions))


def format_table(rows: Sequence[Row]) -> str:
    """The final table: step, wall time, throughput, peak GPU memory,
    outcome."""
    head = ('step', 'wall s', 'throughput', 'peak GPU mem', 'outcome')
    cells = [head] + [(r.step, f'{r.seconds:.1f}', r.throughput, r.memory,
                       r.outcome) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for c in cells:
        lines.append('  '.join(c[i].ljust(widths[i]) if i != 1 else
                               c[i].rjust(widths[i]) for i in range(4)) +
                     '  ' + c[4])
        if c is head:
            lines.append('  '.join('-' * w for w in widths) + '  -------')
    return '\n'.join(lines)


def detect_device(device: str) -> Tuple[str, int]:
    """``(device, visible GPUs)`` for ``--device auto|cuda|cpu``."""
    if device == 'cpu':
        return 'cpu', 0
    import torch
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == 'cuda' and n == 0:
        raise CitymaskError(
            '--device cuda: torch sees no GPU on this node (check '
            '`nvidia-smi` and that torch is a CUDA build); --device cpu '
            'rehearses at CPU size')
    return ('cuda', n) if n else ('cpu', 0)


def rehearse(device: str = 'auto', work_dir: str = 'work_dirs/rehearsal',
             data: Optional[str] = None, checkpoint: Optional[str] = None,
             budget: Optional[float] = None,
             echo: Callable[[str], None] = print) -> List[Row]:
    """Run the rehearsal and print its table (also when a step fails).

    Args:
        device: ``auto`` (every visible GPU, else the CPU), ``cuda`` or
            ``cpu``.
        work_dir: Where everything is written.
        data: A real Cityscapes root, or None to generate frames.
        checkpoint: The model zoo COCO Mask R-CNN, or None for a stand-in.
        budget: Minutes to fit in (scales frame and iteration counts).
        echo: Where the progress lines and the table go.

    Raises:
        StepFailed: a step failed (after the table of the steps so far).
    """
    if data is not None and not osp.isdir(data):
        raise CitymaskError(
            f'--data {data} does not exist; expected a Cityscapes root with '
            'leftImg8bit/ and gtFine/')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise CitymaskError(f'--checkpoint {checkpoint} does not exist')
    device, gpus = detect_device(device)
    plan = make_plan(device, gpus, available_cores(), budget)
    rehearsal = Rehearsal(plan, work_dir, data, checkpoint, echo=echo)
    echo(f'rehearsal of the main job on {machine_summary(plan)}')
    echo(f'work dir {rehearsal.work} (WORK below); config {plan.config}')
    start = time.perf_counter()
    try:
        rehearsal.run()
    finally:
        echo('')
        echo(format_table(rehearsal.rows))
        echo(f'total {time.perf_counter() - start:.1f} s')
    return rehearsal.rows
