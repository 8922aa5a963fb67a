"""Export a module's inference graph to ``.nnp`` with NNabla's own :func:`nnabla.utils.save.save`.

The file holds one network (the module called in ``eval()`` mode on the given
inputs), one executor naming its inputs and outputs, and the module's
parameters keyed relative to its prefix, exactly as ``module.save_parameters``
keys them. NNabla's :class:`nnabla.utils.nnp_graph.NnpLoader`, the C++ runtime
and NNabla's file format converter read it.

Example:

    >>> import os, tempfile
    >>> import nnabla as nn
    >>> import nnabla_modules as nm
    >>> from nnabla_modules.export import export_nnp
    >>> from nnabla.utils.nnp_graph import NnpLoader
    >>> head = nm.Linear(5, 3, name="exported")
    >>> path = os.path.join(tempfile.mkdtemp(), "head.nnp")
    >>> export_nnp(head, path, (4, 5)) == path
    True
    >>> net = NnpLoader(path).get_network("network", batch_size=4)
    >>> list(net.inputs), list(net.outputs)
    (['x'], ['y'])
"""

import os
from collections import OrderedDict
from typing import Any, Optional, Sequence, Union

import nnabla as nn
from nnabla.utils.save import save

from ._util import as_tuple, input_variables
from .core import _registry
from .files import write_atomically
from .module import Module, describe

__all__ = ["export_nnp"]


def export_nnp(
    module: Module,
    path: Union[str, "os.PathLike[str]"],
    *inputs: Any,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
    network_name: str = "network",
    executor_name: str = "runtime",
    variable_batch_size: bool = True,
    **kwargs: Any,
) -> Union[str, "os.PathLike[str]"]:
    """Writes ``module``'s inference graph on ``inputs`` and its parameters to an ``.nnp`` file.

    The module is put in ``eval()`` mode for the call (the modes are restored
    afterwards); the graph is only built, not computed. The file is written to
    a temporary file beside ``path`` and then renamed over it, so a crash never
    leaves a truncated file; a new file gets the permissions the umask gives
    (as ``open`` would), an existing file keeps its own.

    Args:
        module (Module): The module to export.
        path (str): The ``.nnp`` file to write.
        *inputs: ``nn.Variable`` inputs, numpy arrays, or shapes (tuples of
            ints, none negative) for them; the first dimension of the first
            input is the network's batch size.
        input_names (list of str): Names of the inputs in the file; default
            ``x`` (one input) or ``x0``, ``x1``, ... Input and output names
            are distinct, non-empty strings that are no parameter key and do
            not start with ``@``.
        output_names (list of str): Names of the outputs; default ``y`` or
            ``y0``, ``y1``, ... (``NnpLoader`` lists in ``net.outputs`` only the
            outputs no other output is computed from; all are in ``net.variables``).
        network_name (str): The network's name in the file.
        executor_name (str): The executor's name in the file.
        variable_batch_size (bool): Leave the batch dimension open (NNabla's
            default), so ``NnpLoader.get_network(..., batch_size=n)`` takes any ``n``.
        **kwargs: Keyword arguments of the module call.

    Returns:
        str: ``path``.

    Raises:
        ValueError: ``path`` is no ``.nnp`` file, a shape has a negative
            dimension, the names do not fit the inputs or outputs or clash,
            the graph uses parameters outside the module, or NNabla cannot
            leave its batch dimension open (``variable_batch_size=False``
            exports a fixed batch size).
    """
    where = f"export_nnp({describe(module)})"
    if os.path.splitext(str(path))[1] != ".nnp":
        raise ValueError(f"{where}: {path!r} must end with .nnp")
    variables = input_variables(inputs, where)
    outputs = _inference_outputs(module, variables, kwargs)
    params = module.get_parameters(grad_only=False)
    _check_parameters(module, outputs, params)
    in_names = _names(where, "input", input_names, "x", len(variables))
    out_names = _names(where, "output", output_names, "y", len(outputs))
    _check_distinct(where, in_names + out_names, params)
    contents = {
        "networks": [
            {
                "name": network_name,
                "batch_size": variables[0].shape[0] if variables and variables[0].ndim else 1,
                "outputs": OrderedDict(zip(out_names, outputs)),
                "names": OrderedDict(zip(in_names, variables)),
            }
        ],
        "executors": [
            {
                "name": executor_name,
                "network": network_name,
                "data": in_names,
                "output": out_names,
            }
        ],
    }
    write_atomically(
        os.fspath(path),
        lambda temporary: _save(where, temporary, contents, params, variable_batch_size),
    )
    return path


def _inference_outputs(module, variables, kwargs):
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with nn.auto_forward(False):
            outputs = module(*variables, **kwargs)
    finally:
        for m, training in modes:
            m.training = training
    outputs = as_tuple(outputs)
    for output in outputs:
        if not isinstance(output, nn.Variable):
            raise ValueError(
                f"export_nnp({describe(module)}): the call returned a "
                f"{type(output).__name__}; only Variables (or tuples of them) can be exported"
            )
    return outputs


def _names(where, what, given, stem, count):
    if given is None:
        return [stem] if count == 1 else [f"{stem}{i}" for i in range(count)]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != count:
        raise ValueError(f"{where}: {len(given)} {what} names for {count} {what}s")
    for name in given:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: {what} names must be non-empty strings, got {name!r}")
        if name.startswith("@"):  # NNabla names the graph's inner variables @network/...
            raise ValueError(f"{where}: {what} name {name!r} starts with @, which NNabla reserves")
    return given


def _check_distinct(where, names, params):
    """NNabla's file keys variables by name: a repeated name silently renames or merges them."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"{where}: the names {repeated} are given more than once; every input and "
            "output needs a name of its own"
        )
    taken = sorted(name for name in names if name in params)
    if taken:
        raise ValueError(
            f"{where}: the names {taken} are parameter keys of the module; rename them"
        )


def _check_parameters(module, outputs, params):
    """Every registry parameter the graph reads must be one of the module's."""
    with nn.parameter_scope("", _registry.root_scope()):
        registry = {v.data: k for k, v in nn.get_parameters(grad_only=False).items()}
    own = {v.data for v in params.values()}
    foreign = set()

    def visit(function):
        for variable in function.inputs:
            key = registry.get(variable.data)
            if variable.parent is None and key is not None and variable.data not in own:
                foreign.add(key)

    for output in outputs:
        output.visit(visit)
    if foreign:
        raise ValueError(
            f"export_nnp({describe(module)}): the graph uses parameters outside the module: "
            f"{', '.join(sorted(foreign))}. Export the module that owns them."
        )


def _save(where, temporary, contents, params, variable_batch_size):
    # Graph names of the parameters are looked up in the current scope: the
    # module's own keys, relative to its prefix.
    try:
        with nn.parameter_scope("", OrderedDict(params)), open(temporary, "wb") as handle:
            save(
                handle,
                contents,
                extension=".nnp",
                variable_batch_size=variable_batch_size,
                parameters=params,
            )
    except AssertionError as error:
        if not variable_batch_size:
            raise
        batch = contents["networks"][0]["batch_size"]
        raise ValueError(
            f"{where}: NNabla cannot leave the batch dimension open: a reshape, broadcast, "
            f"constant or random function in the graph has a first dimension other than the "
            f"batch size {batch}. Keep the batch dimension first in those shapes, or pass "
            "variable_batch_size=False to export a fixed batch size."
        ) from error
