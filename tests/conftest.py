import gc

import nnabla as nn
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test starts with an empty registry, the CPU float context, root scope."""
    gc.collect()  # free the previous test's modules (and their automatic names)
    nn.clear_parameters()
    nn.seed(313)
    ctx = nn.get_current_context()
    yield
    nn.set_default_context(ctx)
    nn.clear_parameters()


def registry_keys(grad_only=False):
    return list(nn.get_parameters(grad_only=grad_only))


def snapshot(grad_only=False):
    """{key: numpy copy} of the whole registry."""
    return {k: v.d.copy() for k, v in nn.get_parameters(grad_only=grad_only).items()}


def assert_same_arrays(a, b):
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def at_write(monkeypatch, number, action):
    """Runs ``action()`` as a load starts writing its ``number``-th parameter (from 1).

    A load reads every value before it writes any (docs/checkpoints.md): the
    parameters before that one are overwritten already, the others not yet.
    """
    from nnabla_modules import checkpoint

    write, writes = checkpoint._write, []

    def counted(*args, **kwargs):
        writes.append(1)
        if len(writes) == number:
            action()
        return write(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "_write", counted)
    return writes
