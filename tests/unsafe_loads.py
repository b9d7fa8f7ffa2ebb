"""A syntax-tree scan for loads that could run code: ``torch.load`` without
``weights_only=True``, ``np.load`` allowing pickles, ``pickle`` (but by
subclassing), under any name or split over lines."""
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
UNSAFE = WEIGHTS_ONLY | PICKLE | {'numpy.load'}


def _imports(tree: ast.AST) -> Dict[str, str]:
    """Local name -> dotted name imported as (anywhere in the file)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:  # `import a.b` binds `a`
                names[a.asname or a.name.split('.')[0]] = \
                    a.name if a.asname else a.name.split('.')[0]
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


def scan_source(source: str, filename: str = '<string>') -> List[str]:
    """``file:line: why`` for each unsafe load in ``source``."""
    def _const(node, value):
        return isinstance(node, ast.Constant) and node.value is value
    tree = ast.parse(source, filename)
    names = _imports(tree)
    # subclassing (RestrictedUnpickler(pickle.Unpickler)) is how pickle is
    # restricted; the subclass's own loads are method calls, not flagged
    skip = {id(b) for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) for b in node.bases}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        skip.add(id(node.func))
        func = _dotted(node.func, names)
        kwargs = {k.arg: k.value for k in node.keywords}
        why, safe = None, _const(kwargs.get('weights_only'), True)
        if func in WEIGHTS_ONLY and not safe:
            why = f'{func} without weights_only=True'
        elif func in PICKLE:
            why = f'{func} unpickles anything'
        elif func == 'numpy.load' and 'allow_pickle' in kwargs and \
                not _const(kwargs['allow_pickle'], False):
            why = 'numpy.load with allow_pickle'
        elif func == 'numpy.load' and len(node.args) > 2:
            why = 'numpy.load with allow_pickle by position'
        elif getattr(node.func, 'id', None) == 'getattr' and \
                len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            full = f'{_dotted(node.args[0], names)}.{node.args[1].value}'
            if full in WEIGHTS_ONLY | PICKLE:  # getattr(torch, 'load')
                why = f'{full} reached through getattr'
        if why:
            found.append(f'{filename}:{node.lineno}: {why}')
        if 'weights_only' in kwargs and func not in WEIGHTS_ONLY and \
                not safe:
            found.append(f'{filename}:{node.lineno}: weights_only is not True')

    # the function passed around rather than called (partial, aliases)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and \
                id(node) not in skip and isinstance(node.ctx, ast.Load) \
                and _dotted(node, names) in UNSAFE:
            found.append(f'{filename}:{node.lineno}: '
                         f'{_dotted(node, names)} used as a value')
    return found
