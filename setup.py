# Metadata lives in setup.cfg; dependencies are declared once, in
# requirements/ (runtime.txt and mminstall.txt), and read from there.
import os.path as osp

from setuptools import setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(*names):
    """Requirement lines of ``requirements/NAME``, comments dropped."""
    reqs = []
    for name in names:
        with open(osp.join(HERE, 'requirements', name)) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if line and not line.startswith('-'):
                    reqs.append(line)
    return reqs


setup(install_requires=read_requirements('runtime.txt', 'mminstall.txt'))
