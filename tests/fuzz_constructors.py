"""Every public constructor fed arguments of the wrong type, zero, negative and None.

Run as ``python fuzz_constructors.py FIRST``: runs the cases from index FIRST
on, printing ``START i`` before and ``END i <json outcome>`` after each one,
so the caller (tests/test_constructor_fuzz.py) can tell which case killed
the process and restart after it.
"""

import inspect
import json
import sys

import nnabla as nn
import numpy as np

import nnabla_modules as nm

BAD_VALUES = ["8", 0, -1, None, 2.5, (-1, 2), (0,), []]


def _first_row_per_class():
    from test_lazy_layers import ROWS, TEMPLATES

    rows = {}
    for name in sorted(ROWS):
        rows.setdefault(type(TEMPLATES[name]), (name, ROWS[name], TEMPLATES[name]))
    return rows.values()


def _given(module):
    """The template's non-default constructor arguments (wrapped layers as templates)."""
    params = inspect.signature(type(module)).parameters
    given = {}
    for arg, value in module.config.items():
        default = params[arg].default
        try:
            same = type(value) is type(default) and bool(value == default)
        except ValueError:
            same = False
        if not same:
            given[arg] = value
    return given


def _rebuild(template, arg=None, value=None):
    config = {
        k: _rebuild(v) if isinstance(v, nm.Module) else v for k, v in _given(template).items()
    }
    if arg is not None:
        config[arg] = value
    return type(template)(**config, name="")


def _layer_cases():
    for _, row, template in _first_row_per_class():
        args = [a for a in inspect.signature(type(template)).parameters if a != "name"]
        for arg in args:
            for value in BAD_VALUES:

                def build(template=template, arg=arg, value=value):
                    return _rebuild(template, arg, value)

                yield f"{type(template).__name__}({arg}={value!r})", build, row


def _other_cases():
    """Containers, wrap, Embed and sync batch norm: constructors with no table row."""
    embed_row = {
        "shapes": [],
        "inputs": lambda xs: ([nn.Variable.from_numpy_array(np.ones(3))], {}),
    }
    for arg in ("n_inputs", "n_features"):
        for value in BAD_VALUES:
            kwargs = {"n_inputs": 10, "n_features": 4, arg: value}
            yield f"Embed({arg}={value!r})", lambda kwargs=kwargs: nm.Embed(**kwargs), embed_row
    no_call = None
    for value in BAD_VALUES:
        yield (
            f"SyncBatchNormalization(n_features={value!r})",
            (lambda value=value: nm.SyncBatchNormalization(value, 4, None)),
            no_call,
        )
        for container in (nm.Sequential, nm.ModuleList, nm.ModuleDict):
            yield f"{container.__name__}({value!r})", lambda c=container, v=value: c(v), no_call
        yield f"ModuleList([{value!r}])", lambda v=value: nm.ModuleList([v]), no_call
        yield f"ModuleDict(a={value!r})", lambda v=value: nm.ModuleDict(a=v), no_call
        yield f"wrap({value!r})", lambda v=value: nm.wrap(v), no_call
        yield f"FunctionModule({value!r})", lambda v=value: nm.FunctionModule(v), no_call
    yield "ModuleDict({'': Linear})", lambda: nm.ModuleDict({"": nm.Linear(2, 2)}), no_call


def _empty_input_cases():
    """Layers, their sizes left out, called on inputs with an axis of size 0."""
    from test_lazy_layers import without_sizes

    for _, row, template in _first_row_per_class():
        for axis in range(len(row["shapes"][0])):
            shapes = [list(s) for s in row["shapes"]]
            shapes[0][axis] = 0
            empty = {**row, "shapes": [tuple(s) for s in shapes]}
            yield (
                f"{type(template).__name__}(no sizes) on {shapes[0]}",
                lambda template=template: without_sizes(template, name=""),
                empty,
            )


def cases():
    return list(_layer_cases()) + list(_other_cases()) + list(_empty_input_cases())


def run_case(build, row, built):
    nn.clear_parameters()
    module = build()
    built.extend(type(m).__name__ for m in module.modules())  # a wrapped layer may be named
    module.get_parameters(grad_only=False)
    repr(module)
    if row is None:
        return
    rng = np.random.RandomState(0)
    floats = [nn.Variable.from_numpy_array(rng.randn(*s).astype(np.float32)) for s in row["shapes"]]
    args, kwargs = row["inputs"](floats)
    outputs = module(*args, **kwargs)
    for y in outputs if isinstance(outputs, tuple) else (outputs,):
        y.forward()


def outcome(label, build, row):
    """``"ok"``, ``"named"`` (a TypeError/ValueError naming the class), or what went wrong."""
    who = [label.split("(")[0]]
    try:
        run_case(build, row, who)
    except (TypeError, ValueError) as error:
        if any(name in str(error) for name in who):
            return "named"
        return f"{type(error).__name__} not naming {who[0]}: {error}"
    except Exception as error:  # any other exception is a finding
        return f"{type(error).__name__}: {error}"
    return "ok"


def main(first):
    for index, (label, build, row) in enumerate(cases()):
        if index < first:
            continue
        print("START", index, flush=True)
        print("END", index, json.dumps([label, outcome(label, build, row)]), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
