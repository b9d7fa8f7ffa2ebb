"""Checkpoint files: safe loading (``.pth`` weights-only, ``.pkl`` by an
unpickler of numpy arrays; zip CRC-32s, which torch never checks, checked
first), the state dict inside, saving, the latest."""
import codecs
import errno
import glob
import os
import os.path as osp
import pickle
import zipfile
import zlib
from typing import Any, Dict, Optional, Tuple

import torch

from .errors import CheckpointError
from .fileio import annotate, atomic_path, free_bytes


def _latin1_encode(text: str, encoding: str = 'utf-8') -> bytes:
    """``_codecs.encode``, latin1 only (protocol-2 pickles' bytes)."""
    if codecs.lookup(encoding).name != 'iso8859-1':
        raise CheckpointError(
            f'refusing to unpickle _codecs.encode(..., {encoding!r}): a '
            'checkpoint only encodes bytes as latin1')
    return codecs.encode(text, encoding)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting only containers and numpy's array and scalar
    rebuilders (protocols 2 to 5); anything else raises CheckpointError."""

    _NUMPY = {'_reconstruct', 'scalar', 'ndarray', 'dtype'}

    def find_class(self, module: str, name: str) -> Any:
        import numpy as np

        # numpy 2 writes numpy._core, 1.x numpy.core; each reads its own
        core = ('numpy._core' if int(np.__version__.split('.')[0]) >= 2
                else 'numpy.core')
        head, _, tail = module.rpartition('.')
        if head in ('numpy.core', 'numpy._core') and (
                tail == 'multiarray' and name in self._NUMPY
                or tail == 'numeric' and name == '_frombuffer'):
            return super().find_class(f'{core}.{tail}', name)
        if module == 'numpy' and name in self._NUMPY or \
                module == 'numpy.dtypes' and name.endswith('DType') or \
                (module, name) == ('collections', 'OrderedDict'):
            return super().find_class(module, name)
        if (module, name) == ('_codecs', 'encode'):
            return _latin1_encode
        raise CheckpointError(
            f'refusing to unpickle {module}.{name}: a checkpoint holds only '
            'arrays and containers, this file would run code')


def load_pickle(path: str) -> Any:
    """Read a ``.pkl`` checkpoint with :class:`RestrictedUnpickler`."""
    with open(path, 'rb') as f:
        try:
            # latin1: Detectron/py2-era pickles hold byte strings
            return RestrictedUnpickler(f, encoding='latin1').load()
        except CheckpointError as e:
            raise CheckpointError(f'{path}: {e}') from None
        except Exception as e:
            raise CheckpointError(
                f'{path} is not a readable pickle checkpoint ({e})') from None


def _torch_reason(error: Exception) -> str:
    """The line of torch's long weights-only message that says why."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    why = [ln for ln in lines
           if 'Unsupported global' in ln or 'WeightsUnpickler error' in ln]
    return (why or lines or [type(error).__name__])[0][:200]


def load_checkpoint_file(path: str) -> Any:
    """Load a ``.pth`` / ``.pkl`` checkpoint safely (zips CRC-checked, then
    weights-only; plain pickles by :class:`RestrictedUnpickler`), else
    CheckpointError: missing, not a checkpoint, damaged, truncated, unsafe."""
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path} does not exist')
    with open(path, 'rb') as f:
        head = f.read(4)
    is_zip = zipfile.is_zipfile(path)
    again = ('download or copy it again (a transfer that stopped early or '
             'a failing disk?)')
    if not is_zip and head == b'PK\x03\x04':  # a zip without its end
        raise CheckpointError(
            f'checkpoint {path} is truncated (a zip file without its '
            'directory); download or copy it again')
    if not is_zip and head[:1] != b'\x80':  # every pickle starts with PROTO
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint (expected a file written '
            'by torch.save, or a .pkl of numpy arrays)')
    if is_zip:
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as e:
            raise CheckpointError(
                f'checkpoint {path} is damaged ({e}); {again}') from None
        if bad is not None:
            raise CheckpointError(
                f'checkpoint {path} is damaged: its record {bad} fails its '
                f'CRC-32 check; {again}')
    if is_zip or not path.endswith('.pkl'):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:
            if is_zip:
                raise CheckpointError(path + (
                    ': refused by the weights-only loader, it holds objects '
                    'that could run code' if isinstance(
                        e, pickle.UnpicklingError) else
                    ' is not a readable PyTorch checkpoint') +
                    f' ({_torch_reason(e)})') from None
    return load_pickle(path)


def split_checkpoint(ckpt: dict) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The state dict of a checkpoint and the rest of it (meta, ...)."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f'expected a checkpoint dict, got {type(ckpt).__name__}')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key], {k: v for k, v in ckpt.items() if k != key}
    return ckpt, {}


def strip_prefix(state: Dict[str, torch.Tensor],
                 prefix: str = 'module.') -> Dict[str, torch.Tensor]:
    """Drop a DataParallel / DDP prefix from every key that has it."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v
            for k, v in state.items()}


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a checkpoint: about its size on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.element_size() * obj.nelement()
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(
        obj, (list, tuple)) else ()
    return sum(_tensor_bytes(v) for v in items)


def save_checkpoint(ckpt: dict, path: str) -> None:
    """``torch.save`` to ``path`` atomically, fsync'd; torch's
    ``unexpected pos N vs M`` for a failed write is raised as its OSError.
    """
    needed = _tensor_bytes(ckpt)
    with atomic_path(path, needed=needed) as tmp:
        with open(tmp, 'wb') as f:
            try:
                torch.save(ckpt, f)
            except RuntimeError as e:
                cause = e.__context__  # what torch's write call raised
                if isinstance(cause, KeyboardInterrupt):
                    raise cause from None
                if isinstance(cause, OSError):
                    raise annotate(cause, path, needed) from None
                free = free_bytes(path)
                if 'unexpected pos' in str(e) and free is not None \
                        and free < needed:
                    raise annotate(OSError(errno.ENOSPC,
                                           os.strerror(errno.ENOSPC)),
                                   path, needed) from None
                raise
            f.flush()
            os.fsync(f.fileno())


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """What ``--resume`` continues from: the file ``last_checkpoint`` names,
    else (emptied or stale after a kill) the newest ``iter_*.pth``."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    return max(glob.glob(osp.join(work_dir, 'iter_*.pth')), default=None,
               key=lambda p: int(osp.basename(p)[5:-4]))
