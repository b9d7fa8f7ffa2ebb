"""Predictions saved by ``tools/test.py --out``, evaluated with the
config's metrics (mmdet's ``eval_metric.py`` misses the ``data_root``
rewrite). The pickle is untrusted: only what mmengine dumps is unpickled,
and paths and ids are the dataset's (no prediction names a file to read).
"""
import io
import os.path as osp
from typing import Any, Dict, List

from ..checkpoint import RestrictedUnpickler
from ..errors import CheckpointError, CitymaskError


def _storage(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` (a tensor in a plain pickle)
    through torch's weights-only loader, not its code-running default."""
    import torch
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CitymaskError('a tensor that torch\'s weights-only loader '
                            f'refuses ({reason[:200]})') from None


class PredictionUnpickler(RestrictedUnpickler):
    """Arrays, containers and CPU tensors; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            import torch._utils
            return torch._utils._rebuild_tensor_v2
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _storage
        try:
            return super().find_class(module, name)
        except CheckpointError:
            raise CitymaskError(
                f'refusing to unpickle {module}.{name}: saved predictions '
                'hold only arrays, tensors and containers, this file would '
                'run code') from None


def load_predictions(path: str) -> List[dict]:
    """The predictions a ``--out`` pickle holds, one dict per image."""
    try:
        with open(path, 'rb') as f:
            preds = PredictionUnpickler(f).load()
    except CitymaskError as e:
        raise CitymaskError(f'{path}: {e}') from None
    except OSError:
        raise  # one line by citymask.cli
    except Exception as e:  # whatever a damaged pickle makes the VM raise
        raise CitymaskError(f'{path} is not a readable pickle ({e})') from None
    if not isinstance(preds, list) or not all(map(_is_prediction, preds)):
        raise CitymaskError(
            f'{path} holds no predictions (expected the list of dicts with '
            'img_path, ori_shape and pred_instances (scores, labels, masks) '
            'that tools/test.py --out writes)')
    return preds


def _is_prediction(p: Any) -> bool:
    import torch
    pred = p.get('pred_instances') if isinstance(p, dict) else None
    return (isinstance(pred, dict) and isinstance(p.get('img_path'), str)
            and isinstance(p.get('ori_shape'), tuple)
            and len(p['ori_shape']) >= 2
            and all(isinstance(v, int) for v in p['ori_shape'])
            and 'masks' in pred
            and all(isinstance(pred.get(k), torch.Tensor)
                    for k in ('scores', 'labels')))


def evaluate_saved(cfg, path: str) -> Dict[str, float]:
    """``cfg.test_evaluator``'s metrics of a ``--out`` pickle; CitymaskError
    if it would run code or lacks a prediction per test image."""
    from mmdet.registry import DATASETS
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401  (citymask's metric, transforms)
    preds = load_predictions(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    images = {osp.basename(info['img_path']): info for info in
              map(dataset.get_data_info, range(len(dataset)))}
    seen = set()
    for p in preds:
        name = osp.basename(p['img_path'])
        if name not in images or name in seen:
            raise CitymaskError(
                f'{path}: a prediction for {name[:80]!r}, which the test set '
                f'of the config has {"twice" if name in seen else "not"}: '
                'made with another config or split?')
        seen.add(name)
        p.update(img_path=images[name]['img_path'],
                 img_id=images[name]['img_id'])
    if len(seen) != len(images):
        raise CitymaskError(
            f'{path} has predictions for {len(seen)} of the {len(images)} '
            'test images of the config: evaluate it with the config (and '
            'data) it was made with')
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    return evaluator.offline_evaluate(preds)
