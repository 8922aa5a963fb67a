"""Random trees: enumeration is exactly what each module's code touched (docs/concepts.md).

The trees mix layers, a custom parametric function that imports
``get_parameter_or_create`` by name, raw PF code in ``__call__``, ``name=""``
levels, replaced children, children taken out and put back, and kept
submodules. The expected keys are worked out from the tree's description
alone, independently of the library.
"""

import gc
import warnings

import nnabla as nn
import nnabla.initializer as I
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nnabla.parameter import get_parameter_or_create
from nnabla.parametric_functions import parametric_function_api

import nnabla_modules as nm

pytestmark = pytest.mark.slow  # hypothesis, 30 s: make test-fast skips it

WIDTH = 3


@parametric_function_api("scaled")
def scaled(x, fix_parameters=False):
    """Scales by a parameter created through a by-name import."""
    s = get_parameter_or_create("s", (1, WIDTH), I.ConstantInitializer(1.0), True)
    return x * s


Scaled = nm.layer(scaled)


class Raw(nm.Module):
    """Plain PF code in ``__call__``."""

    def __call__(self, x):
        return PF.affine(x, WIDTH, name="raw")


class Block(nm.Module):
    def __init__(self, specs):
        self.specs = specs
        for index, spec in enumerate(specs):
            setattr(self, f"c{index}", build(spec))

    def __call__(self, x):
        for index in range(len(self.specs)):
            x = getattr(self, f"c{index}")(x)
        return x


OWN_KEYS = {"linear": ["affine/W", "affine/b"], "scaled": ["scaled/s"], "raw": ["raw/affine/W",
            "raw/affine/b"]}


def build(spec):
    kind, unnamed, children = spec
    name = {"name": ""} if unnamed else {}
    if kind == "linear":
        return nm.Linear(WIDTH, WIDTH, **name)
    if kind == "scaled":
        return Scaled(**name)
    if kind == "raw":
        return Raw(**name)
    return Block(children, **name)


def expected_keys(spec):
    """The keys a node's code creates, relative to the node's own prefix."""
    kind, _, children = spec
    if kind != "block":
        return set(OWN_KEYS[kind])
    return children_keys(enumerate(children))


def children_keys(indexed_children):
    """The keys of a block's children ``(index, spec)``, relative to the block."""
    keys = set()
    for index, child in indexed_children:
        local = "" if child[1] else f"c{index}"
        keys |= {f"{local}/{key}" if local else key for key in expected_keys(child)}
    return keys


leaves = st.tuples(st.sampled_from(["linear", "scaled", "raw"]), st.booleans(), st.just(()))
trees = st.recursive(
    leaves,
    lambda inner: st.tuples(st.just("block"), st.booleans(), st.lists(inner, min_size=1,
                                                                      max_size=3)),
    max_leaves=8,
)
roots = st.lists(trees, min_size=1, max_size=3).map(lambda children: ("block", False, children))


def nodes(module, spec, path=()):
    """``(path, module, spec)`` for the module and every descendant."""
    yield path, module, spec
    for index, child in enumerate(spec[2]):
        yield from nodes(getattr(module, f"c{index}"), child, path + (index,))


def check_enumeration(root, spec):
    for _, module, node_spec in nodes(root, spec):
        assert set(module.get_parameters(grad_only=False)) == expected_keys(node_spec)


def x():
    return nn.Variable.from_numpy_array(np.ones((1, WIDTH), np.float32))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=roots, data=st.data())
def test_enumeration_replacement_kept_modules_and_freezing(spec, data):
    nn.clear_parameters()
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nm.SharedParameterWarning)  # name="" twins share
        root = Block(spec[2], name="root")
        root(x())
        check_enumeration(root, spec)
        registry = set(nn.get_parameters(grad_only=False))
        assert registry == {f"root/{key}" for key in expected_keys(spec)}

        # Replace one direct child: same keys, fresh Variables (never the old values).
        index = data.draw(st.integers(0, len(spec[2]) - 1))
        child_spec = spec[2][index]
        old = getattr(root, f"c{index}").get_parameters(grad_only=False)
        for value in old.values():
            value.d = 7.0
        setattr(root, f"c{index}", build(child_spec))
        root(x())
        check_enumeration(root, spec)
        new = getattr(root, f"c{index}").get_parameters(grad_only=False)
        shared_by_twins = child_spec[1] and sum(c[1] and c[0] == child_spec[0]
                                                for c in spec[2]) > 1
        if not shared_by_twins:
            assert all(new[key] is not old[key] for key in new)

        # Take a direct child out, then put the same child back: listed as held.
        out = data.draw(st.integers(0, len(spec[2]) - 1))
        taken = getattr(root, f"c{out}")
        delattr(root, f"c{out}")
        remaining = [(i, c) for i, c in enumerate(spec[2]) if i != out]
        assert set(root.get_parameters(grad_only=False)) == children_keys(remaining)
        setattr(root, f"c{out}", taken)
        check_enumeration(root, spec)

        # Freeze a random node: it holds through rebuilds; nothing else changes.
        path, frozen, frozen_spec = data.draw(st.sampled_from(list(nodes(root, spec))))
        trainable_before = set(root.get_parameters(absolute=True))
        frozen.freeze()
        for _ in range(2):
            root(x())
        frozen_keys = set(frozen.get_parameters(grad_only=False, absolute=True))
        assert not set(frozen.get_parameters())
        if not any(s[1] for s in spec[2]):  # no name="" twins that share entries
            assert set(root.get_parameters(absolute=True)) == trainable_before - frozen_keys
        frozen.unfreeze()
        root(x())
        assert set(root.get_parameters(absolute=True)) == trainable_before

        # Keep a submodule, drop the root: the kept one keeps its weights.
        kept = getattr(root, f"c{index}")
        values = {k: v.d.copy() for k, v in kept.get_parameters(grad_only=False).items()}
        del root, frozen
        gc.collect()
        other = Block(spec[2], name="root")  # a given name shares by name, as PF does
        auto = Block(spec[2])
        auto(x())
        for key, value in kept.get_parameters(grad_only=False).items():
            assert np.array_equal(value.d, values[key])
        assert set(kept.get_parameters(grad_only=False)) == expected_keys(child_spec)
        del other
