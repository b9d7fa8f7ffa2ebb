"""torchrun for tools/dist_run.sh (``GPUS [torchrun options] TOOL [args]``),
each launch failure one line instead of torchrun's tracebacks."""
import errno
import logging
import os
import signal
import socket
import sys

from citymask.cli import exit_on_error
from citymask.errors import CitymaskError
from citymask.preflight import check_gpu_count


def check_port_free(port: int) -> None:
    """The rendezvous port must be free on node 0."""
    with socket.socket() as s:
        # as torchrun's store binds: a port in TIME_WAIT counts as free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(('', port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            raise CitymaskError(
                f'PORT {port} is in use on this machine (another distributed '
                f'run?); choose a free one, e.g. PORT={port + 1}') from None


@exit_on_error
def main():
    from torch.distributed import DistNetworkError, DistStoreError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import \
        ChildFailedError
    from torch.distributed.run import parse_args, run
    check_gpu_count(sys.argv[1])
    args = parse_args(sys.argv[2:])
    nodes = args.nnodes
    timeout = dict(kv.split('=') for kv in args.rdzv_conf.split(',')
                   if kv).get('timeout', '600')
    where = f'{args.master_addr}:{args.master_port}'
    if args.node_rank == 0:
        check_port_free(args.master_port)
    logging.disable(logging.CRITICAL)  # the lines below say it once
    # what torchrun and mmengine set in every distributed process, each
    # warning on every rank
    for threads in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(threads, '1')
    # the rendezvous waits in C++, where Python's Ctrl-C handler never runs;
    # torchrun installs its own handlers when it starts the workers
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if nodes != '1':
        print(f'waiting up to {timeout} s for {nodes} nodes at {where} '
              '(Ctrl-C stops)', file=sys.stderr, flush=True)
    try:
        run(args)
    except ChildFailedError as e:
        failures = sorted(e.failures.items())
        said = [f.exitcode for _, f in failures if f.exitcode > 0]
        if said:  # the worker printed why (tools/train.py's error line)
            sys.exit(said[0])
        rank, failure = failures[0]
        name = signal.Signals(-failure.exitcode).name
        oom = ' (out of memory?)' if name == 'SIGKILL' else ''
        raise CitymaskError(
            f'rank {rank} (pid {failure.pid}) was killed by {name}{oom}; '
            'the other ranks were stopped; continue with --resume') from None
    except SignalException as e:
        sys.exit(128 + e.sigval)  # the workers have said where they stopped
    except (DistStoreError, DistNetworkError) as e:
        if 'EADDRINUSE' in str(e):  # taken since the check above
            raise CitymaskError(
                f'PORT {args.master_port} is in use on this machine; choose '
                'a free one') from None
        if 'timed out' not in str(e).lower():
            raise
        raise CitymaskError(
            f'the rendezvous at {where} did not complete in {timeout} s '
            f'({str(e).strip().splitlines()[-1]}): start the same command on '
            f'every one of the {nodes} nodes (NODE_RANK=0..), with '
            'MASTER_ADDR naming node 0, or raise RDZV_TIMEOUT') from None


if __name__ == '__main__':
    main()
