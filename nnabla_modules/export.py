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
import tempfile
from collections import OrderedDict

import nnabla as nn
from nnabla.utils.save import save

from . import _registry
from .module import describe

__all__ = ["export_nnp"]


def export_nnp(
    module,
    path,
    *inputs,
    input_names=None,
    output_names=None,
    network_name="network",
    executor_name="runtime",
    variable_batch_size=True,
    **kwargs,
):
    """Writes ``module``'s inference graph on ``inputs`` and its parameters to an ``.nnp`` file.

    The module is put in ``eval()`` mode for the call (the modes are restored
    afterwards); the graph is only built, not computed. The file is written to
    a temporary file beside ``path`` and then renamed over it, so a crash never
    leaves a truncated file.

    Args:
        module (Module): The module to export.
        path (str): The ``.nnp`` file to write.
        *inputs: ``nn.Variable`` inputs or shapes (tuples of ints) for them; the
            first dimension of the first input is the network's batch size.
        input_names (list of str): Names of the inputs in the file; default
            ``x`` (one input) or ``x0``, ``x1``, ...
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
        ValueError: ``path`` is no ``.nnp`` file, the names do not fit the
            inputs or outputs, or the graph uses parameters outside the module.
    """
    if os.path.splitext(str(path))[1] != ".nnp":
        raise ValueError(f"export_nnp({describe(module)}): {path!r} must end with .nnp")
    variables = [nn.Variable(x) if _is_shape(x) else x for x in inputs]
    outputs = _inference_outputs(module, variables, kwargs)
    params = module.get_parameters(grad_only=False)
    _check_parameters(module, outputs, params)
    in_names = _names(module, "input", input_names, "x", len(variables))
    out_names = _names(module, "output", output_names, "y", len(outputs))
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
    _save_atomically(path, contents, params, variable_batch_size)
    return path


def _is_shape(value):
    return isinstance(value, (tuple, list)) and all(isinstance(d, int) for d in value)


def _inference_outputs(module, variables, kwargs):
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with nn.auto_forward(False):
            outputs = module(*variables, **kwargs)
    finally:
        for m, training in modes:
            m.training = training
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    for output in outputs:
        if not isinstance(output, nn.Variable):
            raise ValueError(
                f"export_nnp({describe(module)}): the call returned a "
                f"{type(output).__name__}; only Variables (or tuples of them) can be exported"
            )
    return outputs


def _names(module, what, given, stem, count):
    if given is None:
        return [stem] if count == 1 else [f"{stem}{i}" for i in range(count)]
    given = list(given)
    if len(given) != count:
        raise ValueError(
            f"export_nnp({describe(module)}): {len(given)} {what} names for {count} {what}s"
        )
    return given


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


def _save_atomically(path, contents, params, variable_batch_size):
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".nnp", dir=folder
    )
    os.close(handle)
    try:
        # Graph names of the parameters are looked up in the current scope: the
        # module's own keys, relative to its prefix.
        with nn.parameter_scope("", OrderedDict(params)):
            save(temporary, contents, variable_batch_size=variable_batch_size, parameters=params)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
