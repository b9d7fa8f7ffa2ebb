"""Workarounds for the pinned stack, applied by ``citymask.register``; each
names the upstream version it works around."""
import contextlib
import functools
import importlib
import pickle
import types
import warnings
from typing import Any, Iterator

import numpy as np
import torch


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``builtins.getattr`` in checkpoints, for ``HistoryBuffer``'s
    statistics methods only (mmengine 0.10.7 pickles them so); a real one
    would reach any allow-listed method (``ndarray.tofile`` writes files)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    # the built-in four are registered on the first HistoryBuffer only
    allowed = {'min', 'max', 'mean', 'current',
               *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def mmengine_safe_globals() -> list:
    """The non-tensor types mmengine 0.10.7 writes into a checkpoint: numpy
    scalars (``meta``), ``HistoryBuffer`` with numpy arrays and statistics
    methods (``message_hub``); no callable that can run code."""
    from mmengine.logging.history_buffer import HistoryBuffer

    # numpy 1.x: ``numpy.core`` (1.26's ``numpy._core`` is a stub)
    multiarray = importlib.import_module(
        'numpy._core.multiarray' if np.__version__[0] >= '2' else
        'numpy.core.multiarray')
    # the numeric / bool / string dtypes; not ``object`` or ``void``
    dtype_classes = {type(np.dtype(code)) for code in '?bhilqBHILQefdgFDGSU'}
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
            *sorted(dtype_classes, key=lambda c: c.__name__), HistoryBuffer,
            (_history_buffer_getattr, 'builtins.getattr')]


def allow_mmengine_checkpoints() -> None:
    """Let torch >= 2.6's weights-only default read mmengine 0.10.7's
    checkpoints (resume / ``load_from`` fail: ``UnpicklingError: ...
    scalar``): the types mmengine writes are allowed. Downloads too:
    mmengine 0.10.7 fetches ``http(s)://``, ``torchvision://``,
    ``open-mmlab://`` ones through ``checkpoint.load_url`` with
    ``weights_only=False``; here weights-only."""
    from mmengine.runner import checkpoint
    torch.serialization.add_safe_globals(mmengine_safe_globals())
    checkpoint.load_url = lambda url, *args, **kwargs: \
        torch.hub.load_state_dict_from_url(url, *args, **kwargs,
                                           weights_only=True)


def init_dist_without_cuda() -> None:
    """Let ``--launcher pytorch`` start without CUDA: mmengine 0.10.7's
    ``_init_dist_pytorch`` always calls ``torch.cuda.set_device``."""
    import torch.distributed as torch_dist
    from mmengine.dist import utils
    upstream = utils._init_dist_pytorch

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return upstream(backend, init_backend=init_backend, **kwargs)
        torch_dist.init_process_group(backend=backend, **kwargs)

    utils._init_dist_pytorch = _init_dist_pytorch


def atomic_checkpoints() -> None:
    """Write Runner checkpoints atomically: mmengine 0.10.7 writes
    ``iter_N.pth`` in place, so a job killed mid-write leaves a truncated
    "latest" checkpoint; local ones are renamed into place when complete."""
    from mmengine.runner import runner as runner_module

    from .checkpoint import save_checkpoint as save_atomic
    upstream = runner_module.save_checkpoint

    def save_checkpoint(checkpoint, filename, file_client_args=None,
                        backend_args=None):
        if file_client_args or backend_args or '://' in str(filename):
            return upstream(checkpoint, filename, file_client_args,
                            backend_args)
        save_atomic(checkpoint, str(filename))

    runner_module.save_checkpoint = save_checkpoint


def atomic_result_dumps() -> None:
    """Write ``tools/test.py --out`` atomically: mmengine 0.10.7's
    ``DumpResults`` (mmdet 3.3.0's ``DumpDetResults``) dump in place, so a
    full disk or Ctrl-C leaves a truncated ``.pkl``."""
    from mmengine.evaluator import metric as metric_module

    from .fileio import atomic_path
    upstream = metric_module.dump

    def dump(obj, file=None, file_format=None, **kwargs):
        if not isinstance(file, str) or '://' in file:
            return upstream(obj, file, file_format, **kwargs)
        with atomic_path(file) as tmp:
            return upstream(obj, tmp, file_format or file.rpartition('.')[2],
                            **kwargs)

    metric_module.dump = dump


def quiet_known_warnings() -> None:
    """Silence the stack's every-run warnings no user can act on:
    setuptools < 81 on ``pkg_resources`` (mmengine 0.10.7 / mmcv 2.1.0),
    torch 2.13 on APIs mmengine 0.10.7 and mmdet 3.3.0 call."""
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    warnings.filterwarnings(
        'ignore', category=FutureWarning, module=r'mm(engine|det|cv)\.')
    warnings.filterwarnings(
        'ignore', category=UserWarning,
        message=r'.*(torch\.meshgrid|__floordiv__|'
        r'The `use_reentrant` parameter).*')


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def fp32_box_coordinates() -> None:
    """Keep anchors and RoIs fp32 under mixed precision (fp16 and bf16):
    mmdet 3.3.0 makes them in the features' dtype, so coordinates round to
    1 px (fp16) / 8 px (bf16) above x = 1024, ``map_roi_levels`` overflows
    fp16, mmcv 2.1.0's ``nms`` and ``RoIAlign`` get bf16. The RoI extractor
    runs on fp32 copies, its output cast back."""
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
    grid_priors = AnchorGenerator.grid_priors
    extract = SingleRoIExtractor.forward

    def fp32_grid_priors(self, featmap_sizes, dtype=torch.float32,
                         device='cuda'):
        return grid_priors(self, featmap_sizes, torch.float32
                           if dtype in _LOW_PRECISION else dtype, device)

    def fp32_extract(self, feats, rois, roi_scale_factor=None):
        if feats[0].dtype not in _LOW_PRECISION:
            return extract(self, feats, rois, roi_scale_factor)
        return extract(self, [f.float() for f in feats], rois.float(),
                       roi_scale_factor).to(feats[0].dtype)

    AnchorGenerator.grid_priors = fp32_grid_priors
    SingleRoIExtractor.forward = fp32_extract


class _NumpyWithIn1d(types.ModuleType):
    """numpy as cityscapesscripts 2.3.0 expects it: with ``np.in1d``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def in1d(ar1, ar2, assume_unique=False, invert=False):
        # numpy < 2.4's in1d: isin on the flattened first argument
        return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique,
                       invert=invert)


def _write_dict_to_json(obj: Any, path: str) -> None:
    """cityscapesscripts' ``writeDict2JSON``, also for numpy scalars."""
    import json
    with open(path, 'w') as f:
        f.write(json.dumps(obj, sort_keys=True, indent=4, default=lambda o: (
            o.item() if isinstance(o, np.generic) else o.__dict__)))


@contextlib.contextmanager
def official_instance_evaluator() -> Iterator[Any]:
    """Yield cityscapesscripts 2.3.0's instance evaluator, on numpy 2: while
    the block runs it (so mmdet 3.3.0's ``CityScapesMetric``) sees a numpy
    with ``in1d`` (gone in 2.4) and a JSON writer for numpy scalars."""
    from cityscapesscripts.evaluation import \
        evalInstanceLevelSemanticLabeling as official
    upstream = official.np, official.writeDict2JSON
    if not hasattr(np, 'in1d'):
        official.np = _NumpyWithIn1d('numpy')
    official.writeDict2JSON = _write_dict_to_json
    try:
        yield official
    finally:
        official.np, official.writeDict2JSON = upstream


@functools.lru_cache(maxsize=None)
def apply() -> None:
    """Apply every workaround (once, however often it is called)."""
    quiet_known_warnings()
    allow_mmengine_checkpoints()
    init_dist_without_cuda()
    atomic_checkpoints()
    atomic_result_dumps()
    fp32_box_coordinates()
