"""Checkpoint files: safe loading, the state dict inside, saving, latest.

Checkpoints come from the internet, so none is loaded in a way that lets it
run code: ``.pth`` files go through ``torch.load(weights_only=True)`` (with
citymask's mmengine allow-list, :mod:`citymask.compat`); ``.pkl`` files
(detectron2's model zoo) through an unpickler that admits numpy arrays and
plain containers only. Saving is atomic (:mod:`citymask.fileio`).

Every checkpoint is verified before use: ``torch.save`` writes a zip whose
records carry CRC-32 checksums, which torch itself never checks (a file
with damaged tensor bytes loads as if nothing were wrong), so
:func:`load_checkpoint_file` checks them first.
"""
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
    """``_codecs.encode`` as protocol-2 pickles use it: Python 3 writes
    every ``bytes`` (numpy's array data too) as ``encode(str, 'latin1')``.
    Only that use is admitted."""
    if codecs.lookup(encoding).name != 'iso8859-1':
        raise CheckpointError(
            f'refusing to unpickle _codecs.encode(..., {encoding!r}): a '
            'checkpoint only encodes bytes as latin1')
    return codecs.encode(text, encoding)


def _numpy_core(module: str) -> str:
    """numpy 2 writes ``numpy._core``, numpy 1.x ``numpy.core``; each reads
    its own (numpy 2's ``numpy.core`` warns it is deprecated)."""
    import numpy as np
    if int(np.__version__.split('.')[0]) >= 2:
        return module.replace('numpy.core', 'numpy._core')
    return module.replace('numpy._core', 'numpy.core')


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for numpy-array checkpoints that refuses everything else.

    Plain containers (dict, list, tuple, str, numbers) need no globals; the
    only globals admitted are those numpy uses to rebuild arrays and
    scalars (pickle protocols 2 to 5), and ``_codecs.encode`` with latin1
    (how protocol 2 stores bytes). Anything else (``os.system``, ``eval``,
    a class with a malicious ``__reduce__``) raises
    :class:`CheckpointError`.
    """

    _NUMPY = {'_reconstruct', 'scalar', 'ndarray', 'dtype'}
    _ALLOWED = {('collections', 'OrderedDict')}

    def find_class(self, module: str, name: str) -> Any:
        if module in ('numpy.core.multiarray', 'numpy._core.multiarray',
                      'numpy') and name in self._NUMPY:
            return super().find_class(_numpy_core(module), name)
        if module == 'numpy.dtypes' and name.endswith('DType'):
            return super().find_class(module, name)
        if module in ('numpy.core.numeric', 'numpy._core.numeric') \
                and name == '_frombuffer':  # arrays in pickle protocol 5
            return super().find_class(_numpy_core(module), name)
        if (module, name) in self._ALLOWED:
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
    for ln in lines:
        if 'Unsupported global' in ln or 'WeightsUnpickler error' in ln:
            return ln[:200]
    return lines[0][:200] if lines else type(error).__name__


def verify_checkpoint(path: str) -> None:
    """Check a ``torch.save`` zip's records against their CRC-32s.

    Raises:
        CheckpointError: the file is truncated or a record is damaged; the
            message names the file.
    """
    again = ('download or copy it again (a transfer that stopped early or '
             'a failing disk?)')
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as e:
        raise CheckpointError(
            f'checkpoint {path} is damaged ({e}); {again}') from None
    if bad is not None:
        raise CheckpointError(
            f'checkpoint {path} is damaged: its record {bad} fails its CRC-32 '
            f'check; {again}')


def load_checkpoint_file(path: str) -> Any:
    """Load a ``.pth`` / ``.pkl`` checkpoint safely, whatever its origin.

    Zip files (``torch.save``) are verified (:func:`verify_checkpoint`) and
    go through ``torch.load(weights_only=True)``; plain pickles
    (detectron2's ``.pkl``, legacy ``torch.save``) through
    :class:`RestrictedUnpickler` if torch's legacy loader can't read them.

    Raises:
        CheckpointError: missing file, not a checkpoint, damaged (CRC) or
            truncated, or a pickle that would run code.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path} does not exist')
    with open(path, 'rb') as f:
        head = f.read(4)
    is_zip = zipfile.is_zipfile(path)
    if not is_zip and head == b'PK\x03\x04':  # a zip without its end
        raise CheckpointError(
            f'checkpoint {path} is truncated (a zip file without its '
            'directory); download or copy it again')
    if not is_zip and head[:1] != b'\x80':  # every pickle starts with PROTO
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint (expected a file written '
            'by torch.save, or a .pkl of numpy arrays)')
    if is_zip:
        verify_checkpoint(path)
    if is_zip or not path.endswith('.pkl'):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as e:
            if is_zip:
                raise CheckpointError(
                    f'{path}: refused by the weights-only loader, it holds '
                    f'objects that could run code ({_torch_reason(e)})'
                ) from None
        except Exception as e:
            if is_zip:
                raise CheckpointError(
                    f'{path} is not a readable PyTorch checkpoint '
                    f'({_torch_reason(e)})') from None
    return load_pickle(path)


def split_checkpoint(ckpt: dict) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The state dict of a checkpoint and the rest of it (meta, ...)."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f'expected a checkpoint dict, got {type(ckpt).__name__}')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            rest = {k: v for k, v in ckpt.items() if k != key}
            return ckpt[key], rest
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
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def save_checkpoint(ckpt: dict, path: str) -> None:
    """``torch.save`` to ``path`` atomically: complete or absent, and on
    disk (fsync) before it is renamed into place.

    torch reports a failed write (a full disk) as ``RuntimeError:
    ... unexpected pos N vs M``; it is raised as the ``OSError`` it is,
    naming ``path`` and the bytes needed.
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
                    raise annotate(cause, path, needed, [tmp]) from None
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
    """The checkpoint ``--resume`` continues from.

    ``last_checkpoint`` names it; if that file is empty or names a missing
    file (a job killed at the wrong moment), the newest ``iter_*.pth`` is
    used: checkpoints are written atomically, so every one is complete.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    found = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    if not found:
        return None
    return max(found, key=lambda p: int(osp.basename(p)[5:-4]))
