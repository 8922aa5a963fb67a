"""The types the layer classes' stubs annotate their arguments with.

Each names what a rule of ``_checks.py`` accepts at run time, numpy's scalars
included, so that a type checker rejects what the constructor would reject
and nothing it accepts.
"""

from typing import Any, Callable, Dict, Sequence, Union

import numpy as np

#: An int or a numpy integer (``np.int64`` from a shape computation).
Int = Union[int, "np.integer[Any]"]
#: One int for every axis, or a sequence of ints (one per axis).
Ints = Union[Int, Sequence[Int]]
#: A real number or a numpy number.
Number = Union[float, "np.number[Any]"]
#: True or False, Python's or numpy's.
Bool = Union[bool, np.bool_]
#: An ``nnabla.initializer`` initializer, a numpy array, or a function of the shape.
Initializer = Union[Any, np.ndarray, Callable[..., Any]]
#: Initializers by parameter name (``param_init``).
Initializers = Dict[str, Initializer]
