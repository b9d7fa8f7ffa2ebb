"""tools/slurm_train.sh with recording stand-ins for sbatch, srun, scontrol:
SIGTERM ahead of the time limit, preemption survived, requeued after a stop
with a checkpoint, resumed when requeued."""
import os
import os.path as osp
import signal
import subprocess
import sys

from ..conftest import REPO

TOOLS = osp.join(REPO, 'tools')
# a stand-in srun: records its arguments; with HOLD, tells the test it is
# running (FIFO) and stops as tools/train.py does on SIGTERM
SRUN = f'''#!{sys.executable}
import os, signal, sys, time
with open(os.environ['LOG'] + '/srun', 'w') as f:
    f.write(' '.join(sys.argv[1:]))
if os.environ.get('HOLD'):
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    with open(os.environ['HOLD'], 'w'):
        pass
    while True:  # not signal.pause(): it misses a signal that came first
        time.sleep(0.01)
'''


def _fake_slurm(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name in ('sbatch', 'scontrol'):
        (bin_dir / name).write_text(
            f'#!/bin/sh\necho "$@" > "$LOG/{name}"\n')
    (bin_dir / 'srun').write_text(SRUN)
    for p in bin_dir.iterdir():
        p.chmod(0o755)
    return dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
                LOG=str(tmp_path), GPUS='4', GPUS_PER_NODE='4')


def _script(*extra):
    return ['bash', osp.join(TOOLS, 'slurm_train.sh'), 'gpu', 'cs', 'CFG.py',
            'WORK', *extra]


def test_submits_a_requeueable_job_signalled_before_the_time_limit(
        tmp_path):
    env = _fake_slurm(tmp_path)
    subprocess.run(_script('--auto-scale-lr'), cwd=tmp_path, env=env,
                   check=True)
    assert (tmp_path / 'sbatch').read_text().split() == [
        '-p', 'gpu', '--job-name=cs', '--gres=gpu:4', '--ntasks=4',
        '--ntasks-per-node=4', '--cpus-per-task=5', '--requeue',
        '--signal=TERM@120', '--open-mode=append',
        '--output=WORK/slurm-%j.out', f'--export=ALL,_CITYMASK_TOOLS={TOOLS}',
        osp.join(TOOLS, 'slurm_train.sh'), 'gpu', 'cs', 'CFG.py', 'WORK',
        '--auto-scale-lr'
    ]
    assert (tmp_path / 'WORK').is_dir()  # for the job's output file


def test_preempted_job_requeues_then_resumes(tmp_path):
    env = _fake_slurm(tmp_path)
    job = dict(env, _CITYMASK_TOOLS=TOOLS, SLURM_JOB_ID='42',
               PYTHON='python3')
    hold = tmp_path / 'running'
    os.mkfifo(hold)
    proc = subprocess.Popen(_script(), cwd=tmp_path,
                            env=dict(job, HOLD=str(hold)),
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    with open(hold):  # the training runs
        pass
    os.killpg(proc.pid, signal.SIGTERM)  # preemption: every process
    _, err = proc.communicate()
    assert proc.returncode == 143, err
    assert 'the training stops at the next iteration' in err
    assert (tmp_path / 'scontrol').read_text().split() == ['requeue', '42']
    srun = (tmp_path / 'srun').read_text().split()
    assert srun[:3] == ['--kill-on-bad-exit=1', 'python3', '-u']
    assert srun[3:] == [osp.join(TOOLS, 'train.py'), 'CFG.py',
                        '--work-dir=WORK', '--launcher', 'slurm']
    # the requeued start (Slurm counts it) resumes from the checkpoint
    os.remove(tmp_path / 'scontrol')
    (tmp_path / 'WORK').mkdir()
    (tmp_path / 'WORK' / 'iter_4.pth').write_bytes(b'')
    subprocess.run(_script('--amp'), cwd=tmp_path, check=True,
                   env=dict(job, SLURM_RESTART_COUNT='1'))
    assert (tmp_path / 'srun').read_text().split()[-3:] == [
        'slurm', '--resume', '--amp']
    assert not (tmp_path / 'scontrol').exists()  # it ended: no requeue
