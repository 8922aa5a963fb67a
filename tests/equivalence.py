"""Builds a PF graph and a module graph from the same seed and compares them bit for bit."""

import nnabla as nn
import nnabla.functions as F
import numpy as np


def run(build, input_shapes, seed=7, data_seed=11, backward=True, forward=True):
    """Builds ``build(*inputs)`` from a fresh registry; returns everything observable.

    ``keys``/``initial``: the registry after construction; ``outputs``; and
    ``grads`` of every registry parameter after a backward pass of the sum of
    the outputs (with the same random output gradient for both graphs).
    """
    nn.clear_parameters()
    nn.seed(seed)
    rng = np.random.RandomState(data_seed)
    inputs = [nn.Variable.from_numpy_array(rng.randn(*shape).astype(np.float32), need_grad=True)
              for shape in input_shapes]
    outputs = build(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    params = nn.get_parameters(grad_only=False)
    initial = {k: v.d.copy() for k, v in params.items()}
    shapes = {k: v.shape for k, v in params.items()}
    for p in params.values():
        p.grad.zero()
    for x in inputs:
        x.grad.zero()
    for y in outputs if forward else ():
        y.forward()
    result = {"keys": list(params), "shapes": shapes, "initial": initial,
              "outputs": [y.d.copy() for y in outputs]}
    if backward and forward:
        # One backward pass from all outputs at once: a multi-output function
        # (the RNNs) reads every output's gradient and must run backward once.
        for y in outputs:
            y.g = rng.randn(*y.shape).astype(np.float32)
        F.sink(*outputs, one_input_grad=False).backward(clear_buffer=False)
        result["grads"] = {k: v.g.copy() for k, v in nn.get_parameters().items()}
        result["input_grads"] = [x.g.copy() for x in inputs]
    result["after"] = {k: v.d.copy() for k, v in nn.get_parameters(grad_only=False).items()}
    return result


def assert_equivalent(a, b):
    assert a["keys"] == b["keys"]
    assert a["shapes"] == b["shapes"]
    for name in ("initial", "grads", "after"):
        if name in a:
            assert list(a[name]) == list(b[name]), name
            for key in a[name]:
                assert np.array_equal(a[name][key], b[name][key]), (name, key)
    assert len(a["outputs"]) == len(b["outputs"])
    for x, y in zip(a["outputs"], b["outputs"]):
        assert np.array_equal(x, y)
    for x, y in zip(a.get("input_grads", []), b.get("input_grads", [])):
        assert np.array_equal(x, y)
