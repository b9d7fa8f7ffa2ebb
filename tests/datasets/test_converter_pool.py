"""The converter's worker pool: who does the work, how workers start, how
frames are grouped, a dying worker. For every mutant (mutation.sh converter).
"""
import contextlib
import multiprocessing
import os
import os.path as osp
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from glob import glob
from unittest import mock

import pytest

from citymask.datasets import cityscapes_converter as conv
from citymask.errors import ConversionError
from .conftest import write_frame


# ---- grouping frames into units --------------------------------------------
def _tasks(kinds):
    """Tasks named by position: ``H`` a frame with ground truth, ``L`` an
    image-only one."""
    return [(f'{i}.png', f'{i}.json' if k == 'H' else None, 'polygon')
            for i, k in enumerate(kinds)]


@pytest.mark.parametrize('kinds,nproc,sizes', [
    # image-only frames: batches of n // (4 * nproc), at least 1, at most 64
    ('L' * 10, 2, [1] * 10),
    ('L' * 100, 2, [12] * 8 + [4]),
    ('L' * 100, 1, [25] * 4),
    ('L' * 1000, 2, [64] * 15 + [40]),
    # a frame with ground truth: a unit of its own, closing the batch before
    # it (10 image-only frames, 1 worker: batches of 2)
    ('LLLLLHLLLLL', 1, [2, 2, 1, 1, 2, 2, 1]),
    ('HHLH', 2, [1, 1, 1, 1]),
])
def test_units_sizes(kinds, nproc, sizes):
    tasks = _tasks(kinds)
    units = conv._units(tasks, nproc)
    assert [len(u) for u in units] == sizes
    assert [t for u in units for t in u] == tasks  # in order, each once
    for u in units:  # never a frame with ground truth in a batch
        assert len(u) == 1 or all(t[1] is None for t in u)


# ---- the real worker processes ---------------------------------------------
@pytest.mark.parametrize('methods', [None, ['fork', 'spawn']])
def test_workers_come_from_the_forkserver_ready_to_convert(monkeypatch,
                                                           methods):
    if methods:  # Windows: no forkserver; fork is no fallback (threads)
        monkeypatch.setattr(multiprocessing, 'get_all_start_methods',
                            lambda: methods)
    monkeypatch.setattr(conv, '_parent_only', True, raising=False)
    pool = conv.worker_pool(1)
    try:
        # two frames at once for a pool of 1: one worker does both
        pids = {f.result() for f in [pool.submit(os.getpid) for _ in range(2)]}
        ppid, sigint, cv_threads, modules, copied = pool.submit(eval, (
            '(__import__("os").getppid(), __import__("signal").getsignal(2),'
            ' __import__("cv2").getNumThreads(), list(__import__("sys")'
            '.modules), hasattr(__import__("sys").modules["citymask.datasets'
            '.cityscapes_converter"], "_parent_only"))')).result()
    finally:
        pool.shutdown()
    assert len(pids) == 1
    # a forked worker would have this process's modules, marker and all
    assert copied is False
    # Ctrl-C is the parent's to handle; OpenCV's threads would contend
    assert sigint is signal.SIG_IGN and cv_threads == 1
    if not methods:  # from the forkserver, ready, nothing heavy loaded
        assert ppid != os.getpid()
        assert 'citymask.datasets.cityscapes_converter' in modules
        assert not {'torch', 'mmengine', 'mmdet', 'mmcv'} & set(modules)


def _readers(path):
    """Processes that have ``path`` open (Linux: /proc)."""
    pids = set()
    for fd in glob('/proc/[0-9]*/fd/*'):  # the fds we may read
        with contextlib.suppress(OSError):  # closed meanwhile (busy worker)
            if os.readlink(fd) == path:
                pids.add(int(fd.split('/')[2]))
    return pids


@pytest.mark.skipif(not osp.isdir('/proc/self/fd'), reason='needs /proc')
def test_a_worker_that_dies_is_one_clear_message(tmp_path):
    # The second image is a FIFO: its reader blocks until this test opens
    # the other end and kills it, as the OOM killer would; each step waits
    # for the one before (nothing depends on timing).
    root = str(tmp_path / 'cs')
    write_frame(root, split='test')
    fifo = osp.join(root, 'leftImg8bit', 'test', 'lindau',
                    'lindau_000001_000019_leftImg8bit.png')
    os.mkfifo(fifo)
    killed, over = [], threading.Event()

    def kill_the_reader():
        fd = os.open(fifo, os.O_WRONLY)  # returns once someone opened it
        try:
            readers = set()
            # the reader's open() returns after ours; read() then blocks
            while not over.is_set() and not readers - {os.getpid()}:
                readers = _readers(fifo)
                os.sched_yield()
            for pid in readers - {os.getpid()}:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        finally:
            os.close(fd)  # whoever reads it (this process?) sees no image

    killer = threading.Thread(target=kill_the_reader)
    killer.start()
    try:
        with pytest.raises(ConversionError) as e:
            conv.convert_splits(root, ['test'], nproc=2, progress=False)
    finally:
        over.set()
        # if no worker opened the FIFO, this open releases the killer
        unblock = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        killer.join()
        os.close(unblock)
    assert killed  # the frames were read in workers
    assert str(e.value) == ('a converter worker process died (out of '
                            'memory?); run again with a smaller --nproc')


# ---- who does the work: a pool of threads in place of processes ------------
class _Pool(ThreadPoolExecutor):
    """:func:`worker_pool` in threads: the work and shut-down seen here."""
    made = []

    def __init__(self, nproc):
        super().__init__(nproc)
        _Pool.made.append(nproc)


@pytest.fixture
def pools(monkeypatch):
    """Worker pools made by the converter (their sizes), on 4 cores."""
    _Pool.made = []
    monkeypatch.setattr(conv, 'worker_pool', _Pool)
    monkeypatch.setattr(conv, 'available_cores', lambda: 4)
    return _Pool.made


@pytest.mark.parametrize('nproc,frames,workers', [
    (1, 'HHH', []),  # 1: here, no workers
    (2, 'HHH', [2]),
    (0, 'HHHHHH', [4]),  # 0: one per core
    (9, 'HHHHHH', [4]),  # capped at the cores
    (4, 'HHH', [3]),  # no more workers than units
    (4, 'LLL', [3]),
    (2, 'H', []),
])
def test_nproc_workers_do_the_work(monkeypatch, pools, nproc, frames, workers):
    ran = []

    def convert_unit(unit):
        ran.append(threading.current_thread() is threading.main_thread())
        return [(dict(frame=t[0]), []) for t in unit]

    monkeypatch.setattr(conv, '_convert_unit', convert_unit)
    tasks = _tasks(frames)
    results = conv._run_tasks(tasks, nproc, progress=False)
    assert results == [(dict(frame=t[0]), []) for t in tasks]
    assert pools == workers
    # every unit in a worker, or every unit here
    assert ran == [not workers] * len(conv._units(tasks, max(1, nproc)))


@pytest.mark.parametrize('stop', ['bad frame', 'ctrl-c'])
def test_a_stop_drops_the_queued_frames_and_waits_for_the_rest(
        monkeypatch, pools, stop):
    started, finished, waits = [], [], []
    stopping = threading.Event()

    def convert_unit(unit):
        name = unit[0][0]
        started.append(name)
        if name == '0.png':
            if stop == 'bad frame':
                raise ConversionError('frame 0 is bad')
            return [(dict(), [])]
        # the others are still being converted when the stop comes
        assert threading.current_thread() is not threading.main_thread()
        stopping.wait()
        finished.append(name)
        return [(dict(), [])]

    class Pool(_Pool):
        def shutdown(self, wait=True, *, cancel_futures=False):
            # queued units dropped before running ones end: none taken
            super().shutdown(wait=False, cancel_futures=cancel_futures)
            stopping.set()
            waits.append(wait)
            super().shutdown(wait=wait)

    import tqdm  # Ctrl-C while the bar is drawn, after frame 0
    monkeypatch.setattr(tqdm, 'tqdm', mock.Mock(**{
        'return_value.update.side_effect': KeyboardInterrupt}))
    monkeypatch.setattr(conv, 'worker_pool', Pool)
    monkeypatch.setattr(conv, '_convert_unit', convert_unit)
    with pytest.raises(ConversionError if stop == 'bad frame' else
                       KeyboardInterrupt):
        conv._run_tasks(_tasks('H' * 20), 2, progress=stop == 'ctrl-c')
    # at most a frame per worker more: the queued ones are cancelled ...
    assert len(started) <= 3
    # ... and the ones under way are waited for: done when it is raised
    assert waits == [True] and sorted(finished) == sorted(started[1:])


@pytest.mark.parametrize('how', ['cityscapes', 'splits'])
def test_nproc_and_progress_reach_the_work(tmp_path, monkeypatch, pools,
                                           how):
    import tqdm  # its bar class, recording the bars the converter opens
    monkeypatch.setattr(tqdm, 'tqdm', bars := mock.Mock())
    root = str(tmp_path / 'cs')
    write_frame(root, copies=2)  # two units

    def convert(**kwargs):
        if how == 'cityscapes':
            return conv.convert_cityscapes(root, str(tmp_path / 'out'),
                                           ['val'], **kwargs)
        return conv.convert_splits(root, ['val'], **kwargs)

    quiet = convert(nproc=2, progress=False)
    assert pools == [2] and not bars.called
    assert convert(nproc=1, progress=True) == quiet  # changes nothing
    assert pools == [2]
    # on terminals only (disable=None), counting frames, closed at the end
    bars.assert_called_once_with(total=2, desc='converting', unit='img',
                                 disable=None)
    bar = bars.return_value
    assert sum(c.args[0] for c in bar.update.call_args_list) == 2
    bar.close.assert_called_once_with()
    # by default: here, with a bar
    convert()
    assert pools == [2] and bars.call_count == 2
