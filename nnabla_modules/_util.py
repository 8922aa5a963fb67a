"""Small helpers shared by the tools (summary, export, testing)."""

from collections.abc import Mapping

import nnabla as nn
import numpy as np


def is_shape(value):
    """True for a tuple or list of ints: a shape the tools turn into an input Variable."""
    return isinstance(value, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in value
    )


def as_tuple(value):
    """A tuple or list as a tuple; anything else as a one-element tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def input_variables(inputs, where, fill=None):
    """``nn.Variable`` inputs from Variables, numpy arrays and shapes.

    A shape becomes a Variable of that shape, holding ``fill(shape)`` when
    ``fill`` is given. A negative dimension is a ``ValueError`` that names
    ``where``: NNabla would allocate it and abort the interpreter.
    """
    converted = []
    for index, value in enumerate(inputs):
        if isinstance(value, np.ndarray):
            value = nn.Variable.from_numpy_array(value)
        elif is_shape(value):
            shape = tuple(int(d) for d in value)
            if any(d < 0 for d in shape):
                raise ValueError(
                    f"{where}: input {index} has the shape {shape}; dimensions must not be "
                    "negative (give the batch size you want, e.g. 1)"
                )
            value = (
                nn.Variable(shape) if fill is None else nn.Variable.from_numpy_array(fill(shape))
            )
        converted.append(value)
    return converted


def nested_leaves(value, path):
    """``(path, leaf)`` pairs of nested tuples, lists and dicts, in order.

    Paths read like Python: ``output``, ``output[0]``, ``output[1]['aux']``.
    """
    if isinstance(value, (tuple, list)):
        items = enumerate(value)
    elif isinstance(value, Mapping):
        items = value.items()
    else:
        return [(path, value)]
    return [pair for key, item in items for pair in nested_leaves(item, f"{path}[{key!r}]")]


def table_lines(columns, rows):
    """Plain-text table lines: a header, a rule, the rows.

    Args:
        columns (sequence): ``(title, align)`` pairs; ``align`` is a format
            alignment (``"<"``, ``">"``).
        rows (iterable): One sequence of cells per row (anything ``str`` shows).
    """
    rows = [[str(cell) for cell in row] for row in rows]
    titles = [title for title, _ in columns]
    widths = [max(len(cells[i]) for cells in [titles] + rows) for i in range(len(titles))]

    def line(cells):
        parts = [f"{c:{align}{w}}" for c, (_, align), w in zip(cells, columns, widths)]
        return "  ".join(parts).rstrip()

    return [line(titles), line(["-" * w for w in widths])] + [line(r) for r in rows]
