"""``module.summary(*inputs)``: a table of the module tree, like Keras's summary or torchinfo.

One row per module (each shared module once), in tree order: its prefix
(indented by depth), class, output shape (from building the graph on the given
inputs; nothing is computed), parameter count (its own and its descendants'),
multiply-adds and whether its parameters are trainable (``yes``, ``no``,
``partial`` when part of it is frozen, ``-`` without parameters). Totals close
the table: parameters, multiply-adds, parameter and activation memory.

Without inputs, the module is not called: the table lists the parameters only.

Example:

    >>> import nnabla_modules as nm
    >>> print(nm.Linear(5, 3, name="fc").summary((4, 5)))
    Module  Class   Output shape  Params  Mult-adds  Trainable
    ------  ------  ------------  ------  ---------  ---------
    fc      Linear  (4, 3)            18         60  yes
    <BLANKLINE>
    Total params: 18
    Trainable params: 18
    Non-trainable params: 0
    Total mult-adds: 60
    Parameter memory: 72 B
    Activation memory: 48 B
"""

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional, Sequence, Tuple

import nnabla as nn
import numpy as np

from ._util import input_variables, nested_leaves, table_lines
from .core._enumeration import owned_entries
from .core._hooks import register_module_forward_hook
from .core._naming import describe
from .core._state import ModuleBase

if TYPE_CHECKING:  # for annotations only: this file may not import module.py
    from .module import Module

__all__ = ["summary", "Summary", "COLUMNS"]

#: Column name -> (title, alignment). ``columns=`` picks from these; the
#: prefix column always comes first.
COLUMNS = OrderedDict(
    [
        ("class", ("Class", "<")),
        ("output_shape", ("Output shape", "<")),
        ("params", ("Params", ">")),
        ("param_memory", ("Param memory", ">")),
        ("mult_adds", ("Mult-adds", ">")),
        ("activation_memory", ("Activations", ">")),
        ("trainable", ("Trainable", "<")),
    ]
)
_DEFAULT_COLUMNS = ("class", "output_shape", "params", "mult_adds", "trainable")
_PARAMETER_COLUMNS = ("class", "params", "param_memory", "trainable")
_NEED_INPUTS = ("output_shape", "mult_adds", "activation_memory")

# Activations are not allocated when the graph is only built: counted as float32.
_ACTIVATION_BYTES = 4


class Summary:
    """The result of :func:`summary`; ``str()`` (and ``repr()``) of it is the table.

    Attributes:
        rows (list): One dict per module shown: ``name`` (the attribute path
            from the summarized module, ``""`` for itself, ``blocks.0.conv``
            below it: unique, also for children with ``name=""``, which share
            their parent's prefix), ``prefix``, ``depth``, ``class``,
            ``output_shape`` (str), ``calls`` (int), ``params`` (int),
            ``param_memory`` (bytes), ``mult_adds`` (int), ``activation_memory``
            (bytes) and ``trainable`` (str). Counts include the descendants';
            without inputs ``output_shape``, ``mult_adds`` and
            ``activation_memory`` are ``None``.
        total_params (int): Elements of all the module's parameters.
        trainable_params (int): Elements of those with ``need_grad=True``.
        non_trainable_params (int): The others.
        total_mult_adds (int): Multiply-adds of the whole call (``None`` without inputs).
        param_memory (int): Bytes of all the module's parameters.
        activation_memory (int): Bytes of the values the call computes
            (``None`` without inputs).
        outputs: What the module returned for the given inputs (``None`` without inputs).
        columns (tuple): The columns of the table.

    Args:
        rows (list): The rows, as described above.
        params (dict): The module's parameters (``get_parameters(grad_only=False)``).
        totals (tuple): ``(total_mult_adds, activation_memory)``.
        outputs: What the module returned.
        columns (tuple): The columns of the table.
    """

    def __init__(
        self,
        rows: List[Dict[str, Any]],
        params: Dict[str, Any],
        totals: Tuple[Optional[int], Optional[int]],
        outputs: Any,
        columns: Sequence[str],
    ) -> None:
        self.rows = rows
        self.total_params = sum(_size(p) for p in params.values())
        self.trainable_params = sum(_size(p) for p in params.values() if p.need_grad)
        self.non_trainable_params = self.total_params - self.trainable_params
        self.param_memory = sum(_bytes(p) for p in params.values())
        self.total_mult_adds, self.activation_memory = totals
        self.outputs = outputs
        self.columns = columns

    def __str__(self) -> str:
        header = ["Module"] + [COLUMNS[c][0] for c in self.columns]
        aligns = ["<"] + [COLUMNS[c][1] for c in self.columns]
        cells = [
            _row_cells(row, self.columns, label)
            for row, label in zip(self.rows, _labels(self.rows))
        ]
        totals = [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
        ]
        if self.total_mult_adds is not None:
            totals.append(f"Total mult-adds: {self.total_mult_adds:,}")
        totals.append(f"Parameter memory: {_memory_text(self.param_memory)}")
        if self.activation_memory is not None:
            totals.append(f"Activation memory: {_memory_text(self.activation_memory)}")
        return "\n".join(table_lines(list(zip(header, aligns)), cells) + [""] + totals)

    __repr__ = __str__


def summary(
    module: "Module",
    *inputs: Any,
    model_kwargs: Optional[Dict[str, Any]] = None,
    depth: Optional[int] = None,
    columns: Optional[Sequence[str]] = None,
    **unexpected: NoReturn,
) -> Summary:
    """Builds the module's graph on ``inputs`` and tabulates the module tree.

    The graph is only built (``nn.auto_forward(False)``), not computed. Building
    creates the parameters a first call would create, nothing else. Without
    inputs the module is not called: the table lists the parameters it has
    (layers that know their sizes create theirs; PF code in ``__call__``
    creates its parameters only when called).

    Multiply-adds are counted per NNabla function the call builds:
    convolutions (output elements times the weight's elements per output
    channel), deconvolutions (input elements times the weight's elements per
    input channel), affine layers (output elements times input features),
    batched matrix products (attention) and the recurrent functions (steps
    times batch times the weights' elements). A row counts the functions
    built during its module's calls. Activation memory adds up the outputs of
    those functions (as float32; in-place functions add nothing).

    Args:
        module (Module): The module to describe.
        *inputs: ``nn.Variable`` inputs, numpy arrays, or shapes (tuples of
            ints) for them. None: the parameters-only table.
        model_kwargs (dict): Keyword arguments of the module's call
            (``{"test": True}``, ...).
        depth (int): Show modules down to this depth only (0: the module
            itself); their counts still include everything below.
        columns (sequence of str): The columns after the prefix, from
            :data:`COLUMNS`. Default: class, output shape, params, mult-adds,
            trainable; without inputs: class, params, param memory, trainable.
        **unexpected: Refused: a ``TypeError`` that points to ``model_kwargs``,
            so a keyword meant for the model never reaches it by accident.

    Returns:
        Summary: print it for the table.

    Raises:
        TypeError: Another keyword argument (the model's go in ``model_kwargs``).
        ValueError: An unknown column, one that needs inputs without them, or
            a negative depth.

    Example:

        >>> import nnabla_modules as nm
        >>> s = nm.Conv2d(3, 8, (3, 3), name="conv").summary((2, 3, 8, 8))
        >>> s.rows[0]["output_shape"], s.total_params, s.total_mult_adds
        ('(2, 8, 6, 6)', 224, 15552)
    """
    where = f"summary({describe(module)})"
    if unexpected:
        raise TypeError(
            f"{where}: unexpected keyword arguments {sorted(unexpected)}; pass the model's "
            f"own keyword arguments as model_kwargs={dict(unexpected)!r}"
        )
    columns = _check_options(where, columns, depth, bool(inputs))
    module.get_parameters(grad_only=False)  # eager parameters, before observing calls
    calls = outputs = None
    if inputs:
        variables = input_variables(inputs, where)
        calls = _CallStatistics()
        with register_module_forward_hook(calls.add), nn.auto_forward(False):
            outputs = module(*variables, **dict(model_kwargs or {}))
    rows = [
        _row(m, name, level, calls)
        for level, name, m in _tree(module)
        if depth is None or level <= depth
    ]
    totals = calls.by_module.get(id(module), (0, 0)) if calls else (None, None)
    return Summary(rows, module.get_parameters(grad_only=False), totals, outputs, columns)


def _check_options(where, columns, depth, have_inputs):
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"{where}: depth must be an int >= 0, got {depth!r}")
    if columns is None:
        return _DEFAULT_COLUMNS if have_inputs else _PARAMETER_COLUMNS
    columns = (columns,) if isinstance(columns, str) else tuple(columns)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"{where}: unknown columns {unknown}; choose from {list(COLUMNS)}")
    needing = [c for c in columns if c in _NEED_INPUTS]
    if needing and not have_inputs:
        raise ValueError(f"{where}: the columns {needing} need inputs to call the module on")
    return columns


class _CallStatistics:
    """Per module: output shapes, multiply-adds and activation bytes of its calls."""

    def __init__(self):
        self.shapes = {}
        self.by_module = {}

    def add(self, module, args, kwargs, output):
        self.shapes.setdefault(id(module), []).append(_shape_text(output))
        functions = _functions_between(_variables((args, kwargs)), _variables(output))
        mult_adds = sum(_mult_adds(f) for f in functions)
        memory = sum(_activation_bytes(f) for f in functions)
        previous = self.by_module.get(id(module), (0, 0))
        self.by_module[id(module)] = (previous[0] + mult_adds, previous[1] + memory)


def _variables(value):
    return [leaf for _, leaf in nested_leaves(value, "") if isinstance(leaf, nn.Variable)]


def _functions_between(inputs, outputs):
    """The functions computing ``outputs`` from ``inputs``: those the call built."""
    stop = set(inputs)
    found, stack = set(), [v for v in outputs if v not in stop]
    while stack:
        function = stack.pop().parent
        if function is None or function in found:
            continue
        found.add(function)
        stack.extend(v for v in function.inputs if v not in stop)
    return found


def _mult_adds(function):
    """Multiply-adds of one NNabla function; 0 for the kinds without products."""
    kind = function.info.type_name
    inputs, outputs = function.inputs, function.outputs
    if kind in ("RNN", "GRU", "LSTM"):
        first = 3 if kind == "LSTM" else 2  # inputs: x, h, (c,) weight_l0, [weight], [bias]
        weight_l0 = inputs[first]
        weights = [weight_l0] + [w for w in inputs[first + 1 :] if w.ndim == weight_l0.ndim + 1]
        steps, batch = inputs[0].shape[:2]
        return steps * batch * sum(_size(w) for w in weights)
    if kind == "BatchMatmul":
        a = inputs[0].shape
        inner = a[-2] if function.info.args.get("transpose_a") else a[-1]
        return _size(outputs[0]) * inner
    if kind.endswith("Deconvolution"):
        return _size(inputs[0]) * _size(inputs[1]) // inputs[1].shape[0]
    if kind.endswith("Convolution"):
        return _size(outputs[0]) * _size(inputs[1]) // inputs[1].shape[0]
    if kind.endswith("Affine"):
        return _size(outputs[0]) * inputs[1].shape[0]
    return 0


def _activation_bytes(function):
    if function.info.args.get("inplace"):
        return 0  # shares its input's memory
    return sum(_size(v) for v in function.outputs) * _ACTIVATION_BYTES


def _shape_text(output):
    if isinstance(output, nn.Variable):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)):
        return ", ".join(_shape_text(item) for item in output)
    if isinstance(output, Mapping):
        return ", ".join(f"{key}: {_shape_text(item)}" for key, item in output.items())
    if output is None:
        return "None"
    return type(output).__name__


def _tree(module):
    """``(depth, name, module)`` in tree order, each module once; names are unique."""
    seen, used = set(), set()

    def visit(current, name, depth):
        if id(current) in seen:
            return
        seen.add(id(current))
        unique, count = name, 1
        while unique in used:  # two children given one name= share a local name
            count += 1
            unique = f"{name}#{count}"
        used.add(unique)
        name = unique
        yield depth, name, current
        held = _attribute_paths(current)
        for local, child in current.named_children():
            local = held.get(id(child)) or local.replace("/", ".") or type(child).__name__
            yield from visit(child, f"{name}.{local}" if name else local, depth + 1)

    yield from visit(module, "", 0)


def _attribute_paths(parent):
    """``id(child) -> attribute path`` (``fc``, ``blocks.0``) of the modules ``parent`` holds."""
    paths, seen = {}, set()
    stack = [(attr, value) for attr, value in vars(parent).items() if attr != "_module_state"]
    stack.reverse()
    while stack:
        path, value = stack.pop()
        if isinstance(value, ModuleBase):
            paths.setdefault(id(value), path)
        elif isinstance(value, (list, tuple, dict)) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(f"{path}.{key}", item) for key, item in items]))
    return paths


def _row(module, name, depth, calls):
    params = module.get_parameters(grad_only=False)
    row = OrderedDict(
        name=name,
        prefix=module.prefix or "(registry root)",
        depth=depth,
        **{"class": type(module).__name__},
        output_shape=None,
        calls=0,
        params=sum(_size(p) for p in params.values()),
        param_memory=sum(_bytes(p) for p in params.values()),
        mult_adds=None,
        activation_memory=None,
        trainable=_trainable_flag(module, params),
    )
    if calls is not None:
        shapes = calls.shapes.get(id(module), [])
        row["calls"] = len(shapes)
        row["output_shape"] = _calls_text(shapes)
        row["mult_adds"], row["activation_memory"] = calls.by_module.get(id(module), (0, 0))
    return row


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
        for _, param, need_grad in owned_entries(sub):
            if need_grad:
                asked += 1
                trainable += bool(param.need_grad)
    if asked == 0 or trainable == 0:
        return "no"
    return "yes" if trainable == asked else "partial"


def _size(variable):
    return int(np.prod(variable.shape))


def _bytes(param):
    return _size(param) * np.dtype(param.data.dtype).itemsize


def _memory_text(count):
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:,} {unit}" if unit == "B" else f"{count:,.2f} {unit}"
        count /= 1024
    return f"{count:,.2f} GiB"


def _row_cells(row, columns, label):
    text = {
        "class": row["class"],
        "output_shape": row["output_shape"],
        "params": f"{row['params']:,}",
        "param_memory": _memory_text(row["param_memory"]),
        "mult_adds": f"{row['mult_adds']:,}" if row["mult_adds"] is not None else "",
        "activation_memory": _memory_text(row["activation_memory"] or 0),
        "trainable": row["trainable"],
    }
    return ["  " * row["depth"] + label] + [text[c] for c in columns]


def _labels(rows):
    """Each row's prefix; a child that adds no level (``name=""``) also shows its attribute."""
    labels, parents = [], []
    for row in rows:
        del parents[row["depth"] :]
        label = row["prefix"]
        if parents and parents[-1] == row["prefix"]:
            label += f" [{row['name'].rsplit('.', 1)[-1]}]"
        labels.append(label)
        parents.append(row["prefix"])
    return labels
