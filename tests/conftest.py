import copy
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')


def pytest_configure(config):
    import signal

    # Started in the background (`make test &`), the suite and every tool it
    # interrupts would ignore Ctrl-C; a handler is reset to default at exec.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # mutmut's fork server's SIGTERM handler would kill other mutants' tests
    # when a pool ends its workers (false "segfault", docs/mutation.md).
    if 'MUTANT_UNDER_TEST' in os.environ:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(autouse=True, scope='session')
def _offline():
    """Tests never download: make any hub/URL fetch fail fast."""
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TORCH_HOME', osp.join(REPO, '.venv', 'torch-home'))


class RunsCode:
    """Pickles as a call of ``target(*args)``, made when it is loaded."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return (self.target, self.args)


def shared_rows():
    """``(Cityscapes row, COCO row)`` of the classes both have, by name in
    mmdet's class lists: a reference independent of citymask's table."""
    from mmdet.datasets import CityscapesDataset, CocoDataset
    coco = CocoDataset.METAINFO['classes']
    return [(i, coco.index(name))
            for i, name in enumerate(CityscapesDataset.METAINFO['classes'])
            if name in coco]


def tool_env(**extra):
    """The caller's environment with the repo on ``PYTHONPATH`` (extended,
    never replaced: packages may come from ``PYTHONPATH`` too)."""
    path = os.environ.get('PYTHONPATH')
    return dict(os.environ, **extra,
                PYTHONPATH=REPO + (os.pathsep + path if path else ''))


def run_tool(*args, env=None, **kwargs):
    """Run a repo tool the way a user would: ``python tools/...``; ``env``:
    variables to set on top of :func:`tool_env`'s."""
    return subprocess.run([sys.executable, *args], cwd=kwargs.pop('cwd', REPO),
                          env=tool_env(**(env or {})), capture_output=True,
                          text=True, **kwargs)


@pytest.fixture(scope='session')
def mini_cityscapes(tmp_path_factory):
    """A generated Cityscapes tree at the real 2048x1024 resolution."""
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = tmp_path_factory.mktemp('cityscapes')
    make_mini_cityscapes(str(root), dict(train=10, val=5, test=2), seed=0)
    return str(root)


@pytest.fixture(scope='session')
def mini_coco(mini_cityscapes, tmp_path_factory):
    """The mini tree converted in both mask formats: {format: {split: path}}"""
    from citymask.datasets.cityscapes_converter import convert_cityscapes
    out = {}
    for fmt in ('polygon', 'rle'):
        out_dir = tmp_path_factory.mktemp(f'ann_{fmt}')
        out[fmt] = convert_cityscapes(mini_cityscapes, str(out_dir),
                                      mask_format=fmt, progress=False)
    return out


def build_model(config, num_classes=None):
    """mmdet model of a citymask config (a name under configs/, or loaded;
    weights not initialised)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    if not isinstance(config, Config):
        config = Config.fromfile(osp.join(CONFIGS, config))
    model = copy.deepcopy(config.model)
    for head in ('bbox_head', 'mask_head') if num_classes else ():
        model.roi_head[head].num_classes = num_classes
    init_default_scope('mmdet')
    return MODELS.build(model)


@pytest.fixture(scope='session')
def mmdet_coco_checkpoint(tmp_path_factory):
    """A COCO (80-class) mmdet Mask R-CNN R-50-FPN checkpoint with mmdet's
    real key layout (taken from mmdet's own model) and random values."""
    model = build_model('maskrcnn_r50_fpn_cityscapes_ft.py', num_classes=80)
    g = torch.Generator().manual_seed(1)
    state = {k: (torch.randn(v.shape, generator=g)
                 if v.is_floating_point() else v.clone())
             for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp('ckpt') / 'mask_rcnn_r50_fpn_1x_coco.pth'
    torch.save(dict(state_dict=state, meta=dict(mmdet_version='2.0.0')), path)
    return str(path), state


MINI_CFG = 'configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py'


def ok(res):
    """``res`` (a finished tool) exited 0; its output's tail if not."""
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return res


@pytest.fixture(scope='session')
def mini_data(tmp_path_factory):
    """``(root, data)``: generated mini-Cityscapes at 512x256, converted, and
    the mini config's stand-in COCO checkpoint after surgery in ``root``."""
    root = str(tmp_path_factory.mktemp('mini'))
    data = osp.join(root, 'mini_cityscapes')
    standin = osp.join(root, 'standin.pth')
    for tool in (['tools/dataset_converters/make_mini_cityscapes.py', data,
                  '--train', '48', '--val', '12', '--test', '4', '--width',
                  '512', '--height', '256'],
                 ['tools/dataset_converters/cityscapes.py', data, '--nproc',
                  '2'],
                 ['tools/misc/make_coco_standin.py', MINI_CFG, standin],
                 ['tools/surgery.py', standin,
                  osp.join(root, 'standin_cs.pth')]):
        ok(run_tool(*tool))
    return root, data


class BackgroundTool:
    """A repo tool started now, waited for later; output to a file (a pipe
    nobody reads would block it once full)."""

    def __init__(self, log, *args, env=None):
        self.log = log
        with open(log, 'w') as out:
            self.proc = subprocess.Popen(
                [sys.executable, *args], cwd=REPO, env=tool_env(**(env or {})),
                stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT)

    def wait(self):
        """The finished run as :func:`run_tool` returns it (all in stdout)."""
        code = self.proc.wait()
        with open(self.log) as f:
            return subprocess.CompletedProcess(self.proc.args, code, f.read(),
                                               '')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope='session')
def mini_training(mini_data):
    """The mini config's 300-iteration training from the stand-in, started
    in the background (see ``_start_training_early``)."""
    root, data = mini_data
    work = osp.join(root, 'train')
    os.makedirs(work)
    run = BackgroundTool(
        osp.join(root, 'train.log'), 'tools/train.py', MINI_CFG, '--work-dir',
        work, '--cfg-options', f'data_root={data}',
        f'load_from={osp.join(root, "standin_cs.pth")}', 'randomness.seed=0',
        # one thread: the other core stays with the foreground tests
        env=dict(OMP_NUM_THREADS='1'))
    yield run, work
    run.stop()


@pytest.fixture(scope='session')
def trained(mini_training):
    """The mini config's checkpoint after 300 iterations."""
    run, work = mini_training
    ok(run.wait())
    return osp.join(work, 'iter_300.pth')


@pytest.fixture(scope='session', autouse=True)
def _start_training_early(request):
    """The mini training (a third of the suite's time) starts with the
    session when a selected test needs it, beside the other tests."""
    if any('trained' in item.fixturenames for item in request.session.items):
        request.getfixturevalue('mini_training')
