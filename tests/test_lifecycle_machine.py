"""A state machine over training workflows, checked against the rules of docs/concepts.md.

Any order of the steps (build, grow a plain list, call through ``__call__`` or a
method, freeze, replace, load before and after the first call,
``nn.load_parameters``, copy, save and reload) must leave what
``get_parameters()``, ``state_dict()`` and ``need_grad`` say equal to a simple
oracle: every layer held has its two weights under its place, frozen ones are
left out of the trainable list, and the values are NNabla's registry's own.
``LIFECYCLE_EXAMPLES`` sets how many runs (CI runs a few; run many locally).
"""

import os

import nnabla as nn
import nnabla.functions as F
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import nnabla_modules as nm

WIDTH = 3
EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "15"))


class Model(nm.Module):
    """The head is held first and called last: attribute order is not call order."""

    def __init__(self):
        self.head = nm.Linear(WIDTH, 2)
        self.layers = [nm.Linear(WIDTH, WIDTH)]

    def __call__(self, x):
        return self.run(x)

    def run(self, x):
        for layer in self.layers:
            x = F.tanh(layer(x))
        return self.head(x)


def _x():
    return nn.Variable.from_numpy_array(np.ones((2, WIDTH), np.float32))


class Workflows(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        nn.clear_parameters()
        self.model = Model(name="model")
        self.frozen = set()  # ids of the frozen layers
        self.files = 0
        self.registry_file = None  # nn.save_parameters' file, from before later freezes

    def _layers(self):
        return self.model.layers

    # --- steps ----------------------------------------------------------------------

    @rule()
    def call(self):
        self.model(_x()).forward()

    @rule()
    def call_through_a_method(self):
        self.model.run(_x()).forward()

    @precondition(lambda self: len(self.model.layers) < 5)
    @rule()
    def grow(self):
        self._layers().append(nm.Linear(WIDTH, WIDTH))

    @rule(data=st.data())
    def replace(self, data):
        index = data.draw(st.integers(0, len(self._layers()) - 1))
        old = self._layers()[index]
        old_weights = list(old.get_parameters(grad_only=False).values())
        self._layers()[index] = nm.Linear(WIDTH, WIDTH)
        self.frozen.discard(id(old))
        new = self.model.get_parameters(grad_only=False)
        assert all(p is not q for p in old_weights for q in new.values())  # fresh weights

    @rule(data=st.data())
    def freeze_one(self, data):
        layer = data.draw(st.sampled_from(self._layers() + [self.model.head]))
        layer.freeze()
        self.frozen.add(id(layer))

    @rule()
    def unfreeze_all(self):
        self.model.unfreeze()
        self.frozen.clear()

    @rule()
    def load_own_state(self):
        state = self.model.state_dict()
        for param in self.model.get_parameters(grad_only=False).values():
            param.d = 5.0
        self.model.load_state_dict(state)
        for key, param in self.model.get_parameters(grad_only=False).items():
            assert np.array_equal(param.d, state[key])

    @rule()
    def nn_save_parameters(self):
        self.registry_file = os.path.join(self.tmp, f"all{self.files}.h5")
        self.files += 1
        nn.save_parameters(self.registry_file)

    @precondition(lambda self: self.registry_file is not None)
    @rule()
    def nn_load_parameters(self):
        nn.load_parameters(self.registry_file)  # sets each entry's need_grad from the file

    @rule()
    def save_and_reload_into_a_fresh_model(self):
        path = os.path.join(self.tmp, f"model{self.files}.h5")
        self.files += 1
        self.model.save_parameters(path)
        fresh = Model(name="fresh")
        fresh.layers.extend(nm.Linear(WIDTH, WIDTH) for _ in self._layers()[1:])
        fresh.load_parameters(path)  # before its first call
        mine, theirs = self.model.state_dict(), fresh.state_dict()
        assert list(mine) == list(theirs)
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine)
        assert list(fresh.get_parameters()) == list(theirs)  # nothing frozen came along
        fresh.release()

    @rule()
    def copy_pairs_layer_with_layer(self):
        ema = self.model.clone()
        assert list(ema.get_parameters(grad_only=False)) == list(
            self.model.get_parameters(grad_only=False))
        self.model(_x())
        assert list(ema.get_parameters(grad_only=False)) == list(
            self.model.get_parameters(grad_only=False))
        ema.release()

    # --- the oracle ---------------------------------------------------------------------

    @invariant()
    def listing_follows_the_rules(self):
        layers = self._layers()
        params = self.model.get_parameters(grad_only=False)
        places = [(f"layers/{i}", layer) for i, layer in enumerate(layers)]
        places.append(("head", self.model.head))
        assert set(params) == {f"{place}/affine/{w}" for place, _ in places for w in "Wb"}
        assert list(self.model.state_dict()) == list(params)
        trainable = {f"{place}/affine/{w}" for place, layer in places
                     if id(layer) not in self.frozen for w in "Wb"}
        assert set(self.model.get_parameters()) == trainable
        registry = nn.get_parameters(grad_only=False)
        for key, param in params.items():
            assert registry[f"model/{key}"] is param
            assert param.need_grad == (key in trainable)


def test_workflows_keep_the_rules(tmp_path):
    Workflows.tmp = str(tmp_path)
    run = Workflows.TestCase
    run.settings = settings(max_examples=EXAMPLES, stateful_step_count=12, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow])
    run().runTest()
