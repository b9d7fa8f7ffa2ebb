"""Workarounds for the pinned stack, applied when ``citymask.register`` is
imported; each names the upstream version it works around.
"""
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
    """Stand-in for ``builtins.getattr`` inside checkpoints: mmengine
    pickles ``HistoryBuffer``'s statistics methods as
    ``getattr(HistoryBuffer, 'min')``; a real ``getattr`` would reach any
    allow-listed class's methods (``ndarray.tofile`` writes files)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    # the built-in four are registered on the first HistoryBuffer only
    allowed = {'min', 'max', 'mean', 'current',
               *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def mmengine_safe_globals() -> list:
    """The non-tensor types that mmengine 0.10.7 writes into a checkpoint.

    ``meta`` holds numpy scalars (the seed), ``message_hub``
    ``HistoryBuffer`` objects around numpy arrays and their statistics
    functions (via ``getattr``); the rest is containers and tensors. No
    callable that can run code is among them.
    """
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
    """Let ``torch.load``'s weights-only default read mmengine checkpoints.

    torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
    0.10.7 calls ``torch.load`` without the argument, so resuming and
    ``load_from`` fail with ``UnpicklingError: ... multiarray.scalar``.
    Weights-only loading stays on: the types mmengine writes are allowed.
    """
    torch.serialization.add_safe_globals(mmengine_safe_globals())


def load_downloads_weights_only() -> None:
    """Downloaded checkpoints are loaded weights-only too.

    mmengine 0.10.7 fetches ``http(s)://``, ``torchvision://`` and
    ``open-mmlab://`` checkpoints (the fine-tune config's ``load_from``)
    through ``mmengine.runner.checkpoint.load_url``, i.e.
    ``torch.hub.load_state_dict_from_url`` with ``weights_only=False``.
    """
    from mmengine.runner import checkpoint
    checkpoint.load_url = _load_url_weights_only


def _load_url_weights_only(url: str, *args, **kwargs) -> Any:
    """``torch.utils.model_zoo.load_url`` with ``weights_only=True``."""
    return torch.hub.load_state_dict_from_url(url, *args, **kwargs,
                                              weights_only=True)


def init_dist_without_cuda() -> None:
    """Let ``--launcher pytorch`` start on machines without CUDA.

    mmengine 0.10.7's ``_init_dist_pytorch`` always calls
    ``torch.cuda.set_device``, which raises on a CPU build of torch.
    """
    import torch.distributed as torch_dist
    from mmengine.dist import utils
    upstream = utils._init_dist_pytorch

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return upstream(backend, init_backend=init_backend, **kwargs)
        torch_dist.init_process_group(backend=backend, **kwargs)

    utils._init_dist_pytorch = _init_dist_pytorch


def atomic_checkpoints() -> None:
    """Write Runner checkpoints atomically.

    mmengine 0.10.7 writes ``iter_N.pth`` in place, then points
    ``last_checkpoint`` at it: a job killed mid-write leaves a truncated
    "latest" checkpoint. Local ones now go to a temporary file renamed when
    complete (before ``last_checkpoint`` is written).
    """
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
    """Write ``DumpResults`` pickles (``tools/test.py --out``) atomically.

    mmengine 0.10.7's ``DumpResults`` (and mmdet 3.3.0's
    ``DumpDetResults``) dump straight into ``out_file_path``: a full disk or
    Ctrl-C leaves a truncated ``.pkl``.
    """
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
    """Silence warnings the pinned stack prints on every run, none of them
    actionable for a user: setuptools < 81 on ``pkg_resources`` (imported
    by mmengine 0.10.7 / mmcv 2.1.0); torch 2.13 on APIs that mmengine
    0.10.7 and mmdet 3.3.0 still call."""
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    warnings.filterwarnings(
        'ignore', category=FutureWarning, module=r'mm(engine|det|cv)\.')
    warnings.filterwarnings(
        'ignore', category=UserWarning,
        message=r'.*(torch\.meshgrid|__floordiv__|'
        r'The `use_reentrant` parameter).*')


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def fp32_box_coordinates() -> None:
    """Keep anchors and RoIs fp32 under mixed precision (fp16 and bf16).

    mmdet 3.3.0 makes the RPN's anchors in the score maps' dtype
    (``BaseDenseHead.predict_by_feat``) and casts RoIs to the features'
    (``SingleRoIExtractor.forward``): under autocast coordinates round to
    1 px (fp16) or 8 px (bf16) steps above x = 1024, ``map_roi_levels``
    overflows fp16 for boxes over 256 px, and mmcv 2.1.0's ``nms`` (fp32
    only) and ``RoIAlign`` (float, double, half) get bf16.

    Anchors asked for in fp16 or bf16 are made in fp32 (decoded boxes
    follow them); the RoI extractor runs on fp32 features and RoIs (RoIAlign
    reads RoIs in the features' type; a transient copy, RoIAlign keeps no
    input for backward) and returns its output in the features' dtype.
    """
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
    """cityscapesscripts' instance evaluator, runnable on numpy 2.

    cityscapesscripts 2.3.0's ``evalInstanceLevelSemanticLabeling`` calls
    ``np.in1d`` (removed in numpy 2.4) and its JSON writer fails on numpy 2's
    integers. While the block runs, that module (and so mmdet 3.3.0's
    ``CityScapesMetric``) sees a numpy with ``in1d`` and a JSON writer for
    numpy scalars; numpy itself and site-packages are left untouched.

    Yields:
        The evaluator module.
    """
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
    load_downloads_weights_only()
    init_dist_without_cuda()
    atomic_checkpoints()
    atomic_result_dumps()
    fp32_box_coordinates()
