"""tests/unsafe_loads.py: nothing in the project loads a pickle that could
run code, and the scanner finds every planted way to."""
import glob
import os.path as osp

import pytest

from .conftest import REPO
from .unsafe_loads import scan_source


def test_no_unsafe_load_in_the_project():
    offenders = []
    for top in ('citymask', 'tools', 'tests', 'configs'):
        for path in sorted(glob.glob(osp.join(REPO, top, '**', '*.py'),
                                     recursive=True)):
            with open(path) as f:
                offenders += scan_source(f.read(), osp.relpath(path, REPO))
    assert offenders == []


PLANTED = {
    # multi-line, without weights_only
    'import torch\nckpt = torch.load(\n    path,\n    map_location="cpu")\n':
    ['2: torch.load without'],
    # aliases of torch and of torch.load
    'import torch as t\nt.load(p, weights_only=False)\n':
    ['2: torch.load without'],
    'from torch import load\nload(p)\n': ['2: torch.load without'],
    'from torch import load as read\nread(p, weights_only=None)\n':
    ['2: torch.load without'],
    'from torch import serialization\nserialization.load(p)\n':
    ['2: torch.serialization.load without'],
    'import torch.hub\ntorch.hub.load_state_dict_from_url(u)\n':
    ['2: torch.hub.load_state_dict_from_url without'],
    'import torch\nflag = True\ntorch.load(p, weights_only=flag)\n':
    ['3: torch.load without'],
    'import torch\ntorch.load(p, **kw)\n': ['2: torch.load without'],
    # passed around instead of called
    'import functools, torch\nf = functools.partial(torch.load)\n':
    ['2: torch.load used as a value'],
    'import torch\nf = getattr(torch, "load")\n':
    ['2: torch.load reached through getattr'],
    # numpy pickles
    'import numpy as np\nnp.load(f, allow_pickle=True)\n':
    ['2: numpy.load with allow_pickle'],
    'from numpy import load\nload(f, None, True)\n':
    ['2: numpy.load with allow_pickle by position'],
    # pickle itself, under any name
    'import pickle as pk\nobj = pk.loads(data)\n':
    ['2: pickle.loads unpickles'],
    'from pickle import Unpickler\nUnpickler(f).load()\n':
    ['2: pickle.Unpickler unpickles'],
    # another library told to unpickle
    'from mmengine.runner import load_checkpoint\n'
    'load_checkpoint(m, p, weights_only=False)\n':
    ['2: weights_only is not True'],
    # safe: nothing to report
    'import torch\nckpt = torch.load(\n    path,\n    weights_only=True)\n':
    [],
    'import numpy as np\nnp.load(f)\nnp.load(f, allow_pickle=False)\n': [],
    'import json\njson.load(f)\nRestrictedUnpickler(f).load()\n'
    's = "torch.load(p)"\nmodel.load(p)\n': [],
}


@pytest.mark.parametrize('source', list(PLANTED))
def test_unsafe_load_scanner_catches_planted_examples(source):
    found = scan_source(source, 'x.py')
    assert len(found) == len(PLANTED[source]), found
    for line, expected in zip(found, PLANTED[source]):
        assert line.startswith('x.py:' + expected), (line, expected)
