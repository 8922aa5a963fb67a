"""Property tests: random module trees against the naming rules of docs/concepts.md.

Trees mix attributes, lists, dicts, shared children, given and automatic names
and name="" levels; the expected prefix of every layer is computed from the
rules independently of the library, then compared with what the registry holds.
"""

import itertools
import subprocess
import sys

import nnabla as nn
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnabla_modules as nm

pytestmark = pytest.mark.slow  # hypothesis and subprocesses: make test-fast skips it

EXAMPLES = 60
_counter = itertools.count()


class Node(nm.Module):
    """Holds children in attributes, lists and dicts; calls them in slot order."""

    def __init__(self, slots):
        self.order = []
        for kind, attr, children in slots:
            if kind == "attr":
                setattr(self, attr, children[0])
            elif kind == "list":
                setattr(self, attr, list(children))
            else:
                setattr(self, attr, {f"k{i}": c for i, c in enumerate(children)})
            self.order.extend(children)

    def __call__(self, x):
        for child in self.order:
            x = child(x)
        return x


# A spec: ("leaf", naming) or ("node", naming, [(kind, [child specs])]) or ("shared",).
namings = st.sampled_from(["auto", "given"])
leaf = st.tuples(st.just("leaf"), namings)
shared = st.just(("shared",))


def _nodes(children):
    slot = st.tuples(st.sampled_from(["attr", "list", "dict"]),
                     st.lists(children, min_size=1, max_size=3))
    slots = st.lists(slot, min_size=1, max_size=3).map(
        lambda s: [(kind, kids[:1] if kind == "attr" else kids) for kind, kids in s])
    return st.tuples(st.just("node"), st.sampled_from(["auto", "given", "empty"]), slots)


trees = st.recursive(st.one_of(leaf, shared), _nodes, max_leaves=12).filter(
    lambda t: t[0] == "node")


def build(spec, leaves, holders):
    """Builds the modules of ``spec`` bottom-up, as user code does.

    ``holders`` records, for each module, the first module constructed that
    holds it and its local name there: the given name (``()`` for ``""``), or
    the attribute path (``("blocks", "0")``).
    """
    kind = spec[0]
    if kind == "shared":
        return leaves[0] if leaves else build(("leaf", "auto"), leaves, holders)
    naming = spec[1]
    given = f"g{next(_counter)}" if naming == "given" else ("" if naming == "empty" else None)
    if kind == "leaf":
        layer = nm.Affine(2, 2, name=given) if given is not None else nm.Affine(2, 2)
        leaves.append(layer)
        holders[id(layer)] = [None, given]
        return layer
    slots, held = [], []
    for slot_kind, children in spec[2]:
        attr = f"a{next(_counter)}"
        built = [build(child, leaves, holders) for child in children]
        slots.append((slot_kind, attr, built))
        for index, child in enumerate(built):
            path = {"attr": (attr,), "list": (attr, str(index)), "dict": (attr, f"k{index}")}
            held.append((child, path[slot_kind]))
    node = Node(slots, name=given) if given is not None else Node(slots)
    holders[id(node)] = [None, given]
    for child, path in held:
        entry = holders[id(child)]
        if entry[0] is None and child is not node:
            entry[0] = node
            entry[1] = path if entry[1] is None else ((entry[1],) if entry[1] else ())
    return node


def expected_prefix(module, holders):
    holder, local = holders[id(module)]
    if holder is None:
        return (module.name,) if module.name else ()  # the root (automatic name: see above)
    return expected_prefix(holder, holders) + local


def make(spec):
    """The model of ``spec``, its layers, and ``{id(module): expected prefix tuple}``.

    The automatic root name (``node``, ``node_1``, ... among live roots, which
    Hypothesis may keep alive between examples) is tested in test_naming.py;
    here it is taken from the root and everything below it is predicted.
    """
    leaves, holders = [], {}
    root = build(spec, leaves, holders)
    modules = {id(m): m for m in leaves}
    expected = {key: expected_prefix(m, holders) for key, m in modules.items()}
    return root, leaves, expected


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(trees)
def test_prefixes_follow_the_rules_and_are_unique(spec):
    nn.clear_parameters()
    root, leaves, expected = make(spec)
    root(nn.Variable((1, 2)))
    unique = {id(layer): layer for layer in leaves}.values()
    for layer in unique:
        assert tuple(filter(None, layer.prefix.split("/"))) == expected[id(layer)]
    prefixes = [layer.prefix for layer in unique]
    assert len(set(prefixes)) == len(prefixes)
    assert len(nn.get_parameters()) == 2 * len(prefixes)  # no layer shares by accident


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(trees, st.booleans())
def test_enumeration_equals_the_owned_registry_slice(spec, eager):
    nn.clear_parameters()
    root, leaves, _ = make(spec)
    before = list(root.get_parameters(grad_only=False)) if eager else None
    root(nn.Variable((1, 2)))
    params = root.get_parameters(grad_only=False)
    assert before is None or before == list(params)  # the tree's order, call or no call
    prefix = root.prefix + "/" if root.prefix else ""
    registry = nn.get_parameters(grad_only=False)
    assert sorted(prefix + key for key in params) == sorted(registry)
    for key, param in params.items():
        assert registry[prefix + key] is param
    for name, module in root.named_modules():
        inner = module.get_parameters(grad_only=False)
        for key in inner:
            assert (f"{name}/{key}" if name else key) in params


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(trees, st.sampled_from([".h5", ".protobuf", "state_dict"]))
def test_save_and_load_round_trip_exactly(tmp_path, spec, kind):
    nn.clear_parameters()
    root, _, _ = make(spec)
    root(nn.Variable((1, 2)))
    params = root.get_parameters(grad_only=False)
    saved = {key: param.d.copy() for key, param in params.items()}
    path = tmp_path / f"model{kind}"
    if kind == "state_dict":
        state = root.state_dict()
    else:
        root.save_parameters(str(path))
    for param in params.values():
        param.d = np.random.randn(*param.shape)
    if kind == "state_dict":
        root.load_state_dict(state)
    else:
        root.load_parameters(str(path))
    after = root.get_parameters(grad_only=False)
    assert list(after) == list(saved)
    for key, param in after.items():
        assert param is params[key]  # loaded in place
        assert np.array_equal(param.d, saved[key])


CROSS_PROCESS = """
import sys
sys.path.insert(0, "tests")
import random
import nnabla as nn
from hypothesis import strategies as st
from test_properties import make, trees
rng = random.Random(5)

def spec(depth=0):
    if depth > 2 or rng.random() < 0.3:
        return ("leaf", rng.choice(["auto", "given"]))
    slots = [(k, [spec(depth + 1) for _ in range(1 if k == "attr" else rng.randint(1, 3))])
             for k in rng.sample(["attr", "list", "dict"], rng.randint(1, 3))]
    return ("node", rng.choice(["auto", "given", "empty"]), slots)

for _ in range(15):
    nn.clear_parameters()
    root, _, _ = make(("node", "auto", [("attr", [spec()])]))
    root(nn.Variable((1, 2)))
    print(list(root.get_parameters(grad_only=False)), list(nn.get_parameters()))
"""


def test_keys_are_identical_across_processes():
    runs = {
        subprocess.run([sys.executable, "-c", CROSS_PROCESS], capture_output=True, text=True,
                       check=True, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        for seed in ("0", "12345")
    }
    assert len(runs) == 1 and len(next(iter(runs)).splitlines()) == 15
