"""``module.summary(*inputs)``: a table of the module tree, like Keras's summary or torchinfo.

One row per module (each shared module once), in tree order: its prefix
(indented by depth), class, output shape (from building the graph on the given
inputs; nothing is computed), parameter count (its own and its descendants') and
whether its parameters are trainable (``yes``, ``no``, ``partial`` when part of
it is frozen, ``-`` without parameters). Totals close the table.

Example:

    >>> import nnabla_modules as nm
    >>> print(nm.Linear(5, 3, name="fc").summary((4, 5)))
    Module  Class   Output shape  Params  Trainable
    ------  ------  ------------  ------  ---------
    fc      Linear  (4, 3)            18  yes
    <BLANKLINE>
    Total params: 18
    Trainable params: 18
    Non-trainable params: 0
"""

import contextlib
from collections import OrderedDict

import nnabla as nn
import numpy as np

from . import _registry
from . import module as _module_impl

__all__ = ["summary", "Summary"]

_COLUMNS = (
    ("prefix", "Module", "<"),
    ("class", "Class", "<"),
    ("output_shape", "Output shape", "<"),
    ("params", "Params", ">"),
    ("trainable", "Trainable", "<"),
)


class Summary:
    """The result of :func:`summary`; ``str()`` (and ``repr()``) of it is the table.

    Attributes:
        rows (list): One dict per module: ``prefix``, ``depth``, ``class``,
            ``output_shape`` (str), ``params`` (int), ``trainable`` (str).
        total_params (int): Elements of all the module's parameters.
        trainable_params (int): Elements of those with ``need_grad=True``.
        outputs: What the module returned for the given inputs.
    """

    def __init__(self, rows, total, trainable, outputs):
        self.rows = rows
        self.total_params = total
        self.trainable_params = trainable
        self.non_trainable_params = total - trainable
        self.outputs = outputs

    def __str__(self):
        cells = [_row_cells(row) for row in self.rows]
        table = _format_table([title for _, title, _ in _COLUMNS], cells)
        totals = [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
        ]
        return "\n".join(table + [""] + totals)

    __repr__ = __str__


def summary(module, *inputs, **kwargs):
    """Builds the module's graph on ``inputs`` and tabulates the module tree.

    The graph is only built (``nn.auto_forward(False)``), not computed. Building
    creates the parameters a first call would create, nothing else.

    Args:
        module (Module): The module to describe.
        *inputs: ``nn.Variable`` inputs, or shapes (tuples of ints) for them.
        **kwargs: Keyword arguments of the call (``test=True``, ...).

    Returns:
        Summary: print it for the table.

    Example:

        >>> import nnabla_modules as nm
        >>> s = nm.Conv2d(3, 8, (3, 3), name="conv").summary((2, 3, 8, 8))
        >>> s.rows[0]["output_shape"], s.total_params
        ('(2, 8, 6, 6)', 224)
    """
    variables = [nn.Variable(x) if _is_shape(x) else x for x in inputs]
    module.get_parameters(grad_only=False)  # eager parameters, before recording calls
    with _recording_calls() as calls, nn.auto_forward(False):
        outputs = module(*variables, **kwargs)
    rows = [_row(m, depth, calls.get(id(m), [])) for depth, m in _tree(module)]
    params = module.get_parameters(grad_only=False)
    total = sum(_size(p) for p in params.values())
    trainable = sum(_size(p) for p in params.values() if p.need_grad)
    return Summary(rows, total, trainable, outputs)


def _is_shape(value):
    return isinstance(value, (tuple, list)) and all(isinstance(d, int) for d in value)


@contextlib.contextmanager
def _recording_calls():
    """Records ``id(module) -> [output, ...]`` of every module call while active."""
    calls = {}
    original = _module_impl._run_in_scope

    def recording(module, fn, args, kwargs):
        active = _registry.active
        chained = bool(active) and active[-1] is module  # super().__call__: the same call
        output = original(module, fn, args, kwargs)
        if not chained:
            calls.setdefault(id(module), []).append(_shape_text(output))
        return output

    _module_impl._run_in_scope = recording
    try:
        yield calls
    finally:
        _module_impl._run_in_scope = original


def _shape_text(output):
    if isinstance(output, nn.Variable):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)):
        return ", ".join(_shape_text(item) for item in output)
    if output is None:
        return "None"
    return type(output).__name__


def _tree(module):
    """``(depth, module)`` in tree order, each module once."""
    seen = set()

    def visit(current, depth):
        if id(current) in seen:
            return
        seen.add(id(current))
        yield depth, current
        for _, child in current.named_children():
            yield from visit(child, depth + 1)

    yield from visit(module, 0)


def _row(module, depth, shapes):
    params = module.get_parameters(grad_only=False)
    return OrderedDict(
        prefix=module.prefix or "(registry root)",
        depth=depth,
        **{"class": type(module).__name__},
        output_shape=_calls_text(shapes),
        params=sum(_size(p) for p in params.values()),
        trainable=_trainable_flag(module, params),
    )


def _calls_text(shapes):
    if not shapes:
        return "(not called)"
    distinct = list(OrderedDict.fromkeys(shapes))
    text = " | ".join(distinct)
    return text if len(shapes) == 1 else f"{text} [{len(shapes)} calls]"


def _trainable_flag(module, params):
    """``yes``/``no``/``partial``/``-``: are the parameters its code asked to train trainable?"""
    if not params:
        return "-"
    asked = trainable = 0
    for sub in module.modules():
        scope = _registry.resolve(_module_impl._prefix(sub), create=False)
        for key, need_grad in sub._module_state.claims.items():
            param = _registry.lookup(scope, key) if scope is not None else None
            if need_grad and _registry.is_variable(param):
                asked += 1
                trainable += bool(param.need_grad)
    if asked == 0 or trainable == 0:
        return "no"
    return "yes" if trainable == asked else "partial"


def _size(param):
    return int(np.prod(param.shape))


def _row_cells(row):
    return [
        "  " * row["depth"] + row["prefix"],
        row["class"],
        row["output_shape"],
        f"{row['params']:,}",
        row["trainable"],
    ]


def _format_table(header, rows):
    widths = [max(len(cells[i]) for cells in [header] + rows) for i in range(len(header))]
    aligns = [align for _, _, align in _COLUMNS]

    def line(cells):
        text = "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths))
        return text.rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
