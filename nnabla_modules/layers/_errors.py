"""The errors of a layer's PF call, named after the module.

PF checks its arguments with ``assert`` and NNabla reports bad values as
``RuntimeError("value error ...")``: both become ValueErrors that name the
module; inputs NNabla cannot compute on are refused before the call.
"""

import os
import traceback

from ..core._habits import array_input_error
from ..core._naming import describe


def check_inputs(layer, inputs):
    """Python values (a list, a number) are no inputs, and NNabla's functions die
    (SIGFPE) on many inputs with an axis of size 0: both refused here."""
    for name, x in zip(layer.inputs, inputs):
        if isinstance(x, (list, tuple, int, float, complex)):
            raise TypeError(
                f"{describe(layer)}: got a {type(x).__name__} as {name}; NNabla computes on "
                "nn.Variable: pass nn.Variable.from_numpy_array(numpy.asarray(value))"
            )
        if 0 in getattr(x, "shape", ()):
            raise ValueError(
                f"{describe(layer)}: the input {name} {x.shape} has an axis of size 0, "
                "which NNabla's functions cannot compute on"
            )


class ErrorsNamed:
    """Prefixes the errors PF raises with the module's description."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(kind, PF_ERRORS):
            raise_named(self.module, error)
        return False


PF_ERRORS = (ValueError, TypeError, RuntimeError, AssertionError)


class NNablaValueError(ValueError, RuntimeError):
    """A bad value NNabla's C++ reported (as a RuntimeError): a ValueError, still a RuntimeError."""


def raise_named(module, error, named_inputs=()):
    """Raises :func:`named_error` of ``error``, from it where it is a new exception."""
    named = named_error(module, error, named_inputs)
    if named is error:
        raise error
    raise named from error


def named_error(module, error, named_inputs=()):
    """The error PF (or NNabla below it) raised, prefixed with the module's description.

    A subclass of these types (a user's own error) is kept as it is, its message
    prefixed, so ``except`` clauses written for it still catch it.

    PF checks its arguments with ``assert`` and NNabla reports bad values as
    ``RuntimeError("value error ...")``: both are ValueErrors of the module. A
    numpy array among ``named_inputs`` (``(name, input)`` pairs) is the cause
    NNabla names as a generator: a TypeError that says so.
    """
    refused = array_input_error(module, named_inputs)
    if refused is not None:
        return refused
    if _CLEAR_ALL in str(error):
        return ValueError(f"{describe(module)}: {_scoped_advice(str(error))}")
    if type(error) not in PF_ERRORS + (NNablaValueError,) and _prefixed(module, error):
        return error  # a subclass (a user's own): ``except`` clauses for it still catch it
    if isinstance(error, RuntimeError) and str(error).startswith("value error"):
        kind = NNablaValueError
    elif isinstance(error, (ValueError, AssertionError)):
        kind = ValueError
    elif isinstance(error, TypeError):
        kind = TypeError
    else:
        kind = RuntimeError
    return kind(f"{describe(module)}: {str(error) or _failed_assertion(error)}")


def _prefixed(module, error):
    """Prefixes ``error``'s message with the module's description, in place; False
    where its message is not made from its first argument (it is left as it was)."""
    if not error.args or not isinstance(error.args[0], str):
        return False
    args, description = error.args, describe(module)
    error.args = (f"{description}: {args[0]}",) + args[1:]
    if description not in str(error):
        error.args = args
        return False
    return True


#: NNabla's advice when a parameter exists with another shape: it would wipe every model's weights.
_CLEAR_ALL = "To clear all parameters, call nn.clear_parameters()."


def _scoped_advice(message):
    """NNabla's message about a parameter of another shape, with advice about this module only."""
    first = message.replace(_CLEAR_ALL, "").strip()
    return (
        f"{first} The registry holds this key for an input of another size: the layer was "
        "built without its input size and took it from its first call, or another module "
        "or PF code has the same prefix. Pass inputs of that size, give this layer another "
        "name=, or call its release() to drop its parameters (no other module's) so that "
        "the next call creates them for the new size."
    )


def _failed_assertion(error):
    """A bare ``assert`` in PF's code has no message: its line of code says what failed."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return f"{type(error).__name__} without a message"
    last = frames[-1]
    return (f"the check `{last.line}` failed in {os.path.basename(last.filename)}, "
            f"line {last.lineno}: the arguments of this call do not go together")


#: PyTorch's argument names -> NNabla's, where they mean the same (``momentum`` does not:
#: NNabla's ``decay_rate`` is ``1 - momentum``).
PYTORCH_NAMES = {
    "in_channels": ("inmaps",),
    "out_channels": ("outmaps",),
    "in_features": ("n_inmaps",),
    "out_features": ("n_outmaps",),
    "kernel_size": ("kernel",),
    "padding": ("pad",),
    "groups": ("group",),
    "bias": ("with_bias",),
    "num_features": ("n_features",),
    "num_embeddings": ("n_inputs",),
    "embedding_dim": ("n_features",),
    "momentum": ("decay_rate", "1 - momentum"),
}


def constructor_error(cls, signature, error, kwargs):
    """A constructor's bad arguments: the signature, the error, and for PyTorch's
    argument names the names this layer takes instead."""
    hints = []
    for given in kwargs:
        name, *meaning = PYTORCH_NAMES.get(given, (None,))
        if name in signature.parameters:
            hints.append(f"{given}= is {name}={f' ({meaning[0]})' if meaning else ''}")
    hint = f" (PyTorch's names: {'; '.join(hints)})" if hints else ""
    return f"{cls.__name__}{signature}: {error}{hint}"
