"""StopOnSignalHook's handlers: the training notes the signal; a process
forked from it ends as without the hook. The stop itself:
tests/tools/test_train_test.py and test_launch.py."""
import multiprocessing
import os
import signal
import time

from citymask.hooks import StopOnSignalHook


def _wait_for_a_signal(ready):
    ready.set()
    while True:  # not signal.pause(): it misses a signal that came first
        time.sleep(0.01)


def test_handlers_note_the_signal_and_forked_children_end():
    hook = StopOnSignalHook()
    # the default action beneath the hook, whatever an earlier test left
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    hook.before_train(None)
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # handled before kill returns
        assert hook.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)
        assert hook.signum == signal.SIGTERM  # the first one is reported
        # a pool ends its workers with SIGTERM: they must not wait for an
        # iteration boundary they never reach
        ctx = multiprocessing.get_context('fork')
        ready = ctx.Event()
        child = ctx.Process(target=_wait_for_a_signal, args=(ready,))
        child.start()
        # (Python drops a signal in the instant after fork(): only once the
        # child runs)
        ready.wait()
        child.terminate()
        child.join()
        assert child.exitcode == -signal.SIGTERM
    finally:
        hook.after_train(None)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        signal.signal(signal.SIGTERM, before)
