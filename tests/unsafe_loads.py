"""A syntax-tree scan for loads that could run code from a file.

Checkpoints and pickles come from the internet: ``torch.load`` must say
``weights_only=True``, ``np.load`` must not allow pickles, and ``pickle``
itself is only used through :class:`citymask.checkpoint.RestrictedUnpickler`
(whose ``load`` is a method call on our own class, not ``pickle.load``).
Reading the syntax tree (not lines of text) catches calls split over
lines and the function under another name (``import torch as t``,
``from torch import load``, ``functools.partial(torch.load, ...)``).
"""
import ast
from typing import Dict, List, Optional

# callables that unpickle unless told weights_only=True
WEIGHTS_ONLY = {'torch.load', 'torch.serialization.load',
                'torch.hub.load_state_dict_from_url',
                'torch.utils.model_zoo.load_url'}
# callables that unpickle whatever the arguments
PICKLE = {'pickle.load', 'pickle.loads', 'pickle.Unpickler', '_pickle.load',
          '_pickle.loads', '_pickle.Unpickler', 'dill.load', 'dill.loads',
          'joblib.load', 'pandas.read_pickle', 'numpy.lib.format.read_array'}
NUMPY_LOAD = {'numpy.load'}


def _imports(tree: ast.AST) -> Dict[str, str]:
    """Local name -> the dotted name it was imported as (anywhere in the
    file: a function-level import counts for the whole file)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = a.name
                else:  # `import a.b` binds `a`
                    top = a.name.split('.')[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and \
                not node.level:
            for a in node.names:
                names[a.asname or a.name] = f'{node.module}.{a.name}'
    return names


def _dotted(node: ast.AST, names: Dict[str, str]) -> Optional[str]:
    """The imported dotted name an expression refers to, if any."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return '.'.join([names[node.id], *reversed(attrs)])


def _const(node: ast.AST, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def scan_source(source: str, filename: str = '<string>') -> List[str]:
    """``file:line: why`` for each unsafe load in ``source``."""
    tree = ast.parse(source, filename)
    names = _imports(tree)
    called = set()
    # subclassing (RestrictedUnpickler(pickle.Unpickler)) is how pickle is
    # restricted; the subclass's own loads are method calls, not flagged
    bases = {id(b) for node in ast.walk(tree)
             if isinstance(node, ast.ClassDef) for b in node.bases}
    found = []

    def report(node, why):
        found.append(f'{filename}:{node.lineno}: {why}')

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called.add(id(node.func))
        func = _dotted(node.func, names)
        kwargs = {k.arg: k.value for k in node.keywords}
        if func in WEIGHTS_ONLY:
            if not _const(kwargs.get('weights_only'), True):
                report(node, f'{func} without weights_only=True')
        elif func in PICKLE:
            report(node, f'{func} unpickles anything')
        elif func in NUMPY_LOAD:
            if 'allow_pickle' in kwargs and \
                    not _const(kwargs['allow_pickle'], False):
                report(node, 'numpy.load with allow_pickle')
            elif len(node.args) > 2:  # allow_pickle given by position
                report(node, 'numpy.load with allow_pickle by position')
        elif func == 'getattr' or (isinstance(node.func, ast.Name)
                                   and node.func.id == 'getattr'):
            # getattr(torch, 'load') and the like
            if len(node.args) >= 2 and isinstance(node.args[1],
                                                  ast.Constant):
                target = _dotted(node.args[0], names)
                full = f'{target}.{node.args[1].value}'
                if target and full in WEIGHTS_ONLY | PICKLE:
                    report(node, f'{full} reached through getattr')
        if 'weights_only' in kwargs and \
                not _const(kwargs['weights_only'], True):
            if func not in WEIGHTS_ONLY:
                report(node, 'weights_only is not True')
    # the function passed around rather than called (partial, aliases)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and \
                id(node) not in called and id(node) not in bases and \
                isinstance(getattr(node, 'ctx', None), ast.Load):
            func = _dotted(node, names)
            if func in WEIGHTS_ONLY | PICKLE | NUMPY_LOAD:
                report(node, f'{func} used as a value')
    return found
