"""Answers to PyTorch habits that NNabla does not share (docs/faq.md).

A numpy array given as an input, and the per-module device and precision
methods (``.cuda()``, ``.to()``, ``.half()``): each gets an error that names
the module and says what NNabla does instead.
"""

import numpy as np

from ._naming import describe


def array_input_error(module, named_inputs):
    """A TypeError for a numpy array given where NNabla takes an ``nn.Variable``, or None.

    NNabla's own message names neither the array nor the fix ("All inputs
    must be Variable. [<class ...generator>]"): asked on that error only.
    """
    for name, value in named_inputs:
        if isinstance(value, np.ndarray):
            return TypeError(
                f"{describe(module)}: got a numpy.ndarray of shape {value.shape} as {name}; "
                "NNabla computes on nn.Variable: pass nn.Variable.from_numpy_array(array) "
                "(or keep one Variable and set its data, x.d = array)"
            )
    return None


class PerProcess:
    # A PyTorch method that NNabla has per process (.cuda(), .half()): reading it
    # raises an AttributeError that says what to do. A non-data descriptor
    # without a docstring: an attribute of that name is the user's, hasattr()
    # is False, and the API reference lists nothing.

    def __init__(self, what):
        self.what = what

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, module, owner=None):
        if module is None:
            return self
        raise AttributeError(
            f"{describe(module)} has no method {self.name}(): NNabla chooses {self.what} for "
            "the whole process, not per module. Call nn.set_default_context("
            "get_extension_context('cudnn', device_id='0')) (from nnabla.ext_utils; "
            "type_config='half' for float16) before building the graph; see docs/gpu.md."
        )


def add_per_process_methods(cls):
    """Gives ``cls`` PyTorch's device and precision methods, each refused with the answer."""
    for name, what in (
        ("cuda", "the device"),
        ("cpu", "the device"),
        ("to", "the device and the precision"),
        ("half", "the precision"),
        ("float", "the precision"),
        ("double", "the precision"),
        ("bfloat16", "the precision"),
    ):
        descriptor = PerProcess(what)
        descriptor.__set_name__(cls, name)
        setattr(cls, name, descriptor)
