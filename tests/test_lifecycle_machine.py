"""A state machine over training workflows, checked against the rules of docs/concepts.md.

Any order of the steps (build, grow a plain list, a dict or a ``ModuleList``, call
through ``__call__`` or a method, freeze, replace, swap two trained layers, load
before and after the first call, ``nn.load_parameters``, the module's own
``save_parameters``/``load_parameters``, copy, resume with solver states, fork a
worker) must leave what ``get_parameters()``, ``state_dict()``, their order and
``need_grad`` say equal to a simple oracle: every layer held has its two weights
under its place, in the tree's order (attributes as assigned, then each
container's items in order), frozen ones are left out of the trainable list, and
the values are NNabla's registry's own.
``LIFECYCLE_EXAMPLES`` sets how many runs (CI runs a few; run many locally).
"""

import os
import threading

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.solvers as S
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import nnabla_modules as nm

WIDTH = 3
EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "15"))
CONTAINERS = ("layers", "stack", "branches")


class Model(nm.Module):
    """Attributes are held in another order than the call uses them, and PF code of its
    own runs beside the layers: its keys exist from the first call on."""

    def __init__(self):
        self.head = nm.Linear(WIDTH, 2)
        self.mid = nm.Linear(WIDTH, WIDTH)
        self.layers = [nm.Linear(WIDTH, WIDTH)]  # a plain list
        self.stack = nm.ModuleList([nm.Linear(WIDTH, WIDTH)])
        self.branches = {}  # a plain dict, grown later

    def __call__(self, x):
        return self.run(x)

    def run(self, x):
        x = F.tanh(PF.affine(x, WIDTH, name="own"))
        for layer in [*self.layers, *self.stack, *self.branches.values(), self.mid]:
            x = F.tanh(layer(x))
        return self.head(x)


def _places(model):
    """The oracle's tree order: attributes as assigned, then each container's items."""
    places = [("head", model.head), ("mid", model.mid)]
    places += [(f"layers/{i}", layer) for i, layer in enumerate(model.layers)]
    places += [(f"stack/{i}", layer) for i, layer in enumerate(model.stack)]
    places += [(f"branches/{key}", layer) for key, layer in model.branches.items()]
    return places


def _keys(places, ran=False):
    """The keys in the tree's order: the model's own PF code's first, once it has run."""
    own = ["own/affine/W", "own/affine/b"] if ran else []
    return own + [f"{place}/affine/{w}" for place, _ in places for w in "Wb"]


def _like(model, name):
    """A fresh model of the same shape, as a script that resumes would build it."""
    fresh = Model(name=name)
    fresh.layers.extend(nm.Linear(WIDTH, WIDTH) for _ in model.layers[1:])
    fresh.stack.extend(nm.Linear(WIDTH, WIDTH) for _ in list(model.stack)[1:])
    fresh.branches.update((key, nm.Linear(WIDTH, WIDTH)) for key in model.branches)
    return fresh


def _x():
    return nn.Variable.from_numpy_array(np.linspace(-1, 1, 2 * WIDTH, dtype=np.float32)
                                        .reshape(2, WIDTH))


def _values(module):
    return {key: param.d.copy() for key, param in module.get_parameters(grad_only=False).items()}


def _same(a, b):
    return list(a) == list(b) and all(np.array_equal(a[key], b[key]) for key in a)


class Workflows(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        nn.clear_parameters()
        self.model = Model(name="model")
        self.frozen = set()  # ids of the frozen layers
        self.files = 0
        self.registry_file = None  # nn.save_parameters' file, from before later freezes
        self.own_file = None  # (path, state dict) of the module's own save_parameters
        self.ran = False  # the model's code has run: its own PF code's keys exist

    def _path(self, stem):
        self.files += 1
        return os.path.join(self.tmp, f"{stem}{self.files}.h5")

    def _container(self, which):
        return getattr(self.model, which)

    def _freeze_like_the_model(self, fresh):
        for (_, layer), (_, copy) in zip(_places(self.model), _places(fresh)):
            if id(layer) in self.frozen:
                copy.freeze()

    # --- steps ----------------------------------------------------------------------

    @rule()
    def call(self):
        self.model(_x()).forward()
        self.ran = True

    @rule()
    def call_through_a_method(self):
        self.model.run(_x()).forward()
        self.ran = True

    @precondition(lambda self: len(_places(self.model)) < 9)
    @rule(which=st.sampled_from(CONTAINERS))
    def grow(self, which):
        container = self._container(which)
        if which == "branches":
            container[f"b{self.files}_{len(container)}"] = nm.Linear(WIDTH, WIDTH)
            self.files += 1
        else:
            container.append(nm.Linear(WIDTH, WIDTH))

    @rule(data=st.data())
    def replace(self, data):
        place, old = data.draw(st.sampled_from(_places(self.model)))
        old_weights = list(old.get_parameters(grad_only=False).values())
        new = nm.Linear(WIDTH, 2 if place == "head" else WIDTH)
        which, _, key = place.partition("/")
        if not key:
            setattr(self.model, which, new)
        elif which == "branches":
            self.model.branches[key] = new
        else:
            self._container(which)[int(key)] = new
        self.frozen.discard(id(old))
        fresh = self.model.get_parameters(grad_only=False)
        assert all(p is not q for p in old_weights for q in fresh.values())  # fresh weights

    @precondition(lambda self: len(_places(self.model)) > 2)
    @rule(data=st.data())
    def swap_two_trained_layers(self, data):
        """A trained module's place is fixed: a swap is a ValueError and changes nothing."""
        places = _places(self.model)
        for _, layer in places:
            layer.get_parameters()  # sized layers have weights from their first use
        kinds = [which for which in ("attributes",) + CONTAINERS
                 if which == "attributes" or len(self._container(which)) >= 2]
        which = data.draw(st.sampled_from(kinds))
        before, values = self.model.get_parameters(grad_only=False), _values(self.model)
        if which == "attributes":
            with pytest.raises(ValueError, match="mid"):
                self.model.head, self.model.mid = self.model.mid, self.model.head
        elif which == "stack":
            with pytest.raises(ValueError, match="stack"):
                self.model.stack[0], self.model.stack[1] = self.model.stack[1], self.model.stack[0]
        else:  # a plain list or dict cannot refuse the assignment: every use of the model does
            container = self._container(which)
            i, j = list(container)[:2] if which == "branches" else (0, 1)
            container[i], container[j] = container[j], container[i]
            for use in (self.model.get_parameters, self.model.state_dict, self.model.freeze,
                        lambda: self.model.save_parameters(self._path("swapped"))):
                with pytest.raises(ValueError, match="cannot change places"):
                    use()
            container[i], container[j] = container[j], container[i]
        after = self.model.get_parameters(grad_only=False)
        assert list(after) == list(before) and all(after[k] is before[k] for k in before)
        assert _same(_values(self.model), values)

    @rule(data=st.data())
    def freeze_one(self, data):
        _, layer = data.draw(st.sampled_from(_places(self.model)))
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
        # Taken before the first call, the state lacks what that call creates: a strict
        # load would fail at it (tests/test_lifecycle.py checks that).
        self.model.load_state_dict(state, strict=self.ran)
        assert _same(_values(self.model), state)

    @rule()
    def nn_save_parameters(self):
        self.registry_file = self._path("all")
        nn.save_parameters(self.registry_file)

    @precondition(lambda self: self.registry_file is not None)
    @rule()
    def nn_load_parameters(self):
        nn.load_parameters(self.registry_file)  # sets each entry's need_grad from the file

    @rule()
    def save_parameters(self):
        path = self._path("own")
        self.model.save_parameters(path)
        self.own_file = (path, self.model.state_dict())

    @precondition(lambda self: self.own_file is not None)
    @rule()
    def load_parameters(self):
        """Back to the saved values when the keys still fit; else an error that changes nothing."""
        path, saved = self.own_file
        values = _values(self.model)
        if list(saved) == list(values):
            self.model.load_parameters(path, strict=self.ran)
            assert _same(_values(self.model), saved)
        else:
            with pytest.raises(nm.checkpoint.CheckpointError):
                self.model.load_parameters(path)
            assert _same(_values(self.model), values)

    @rule(surgery=st.booleans())
    def save_and_reload_into_a_fresh_model(self, surgery):
        path = self._path("model")
        self.model.save_parameters(path)
        fresh = _like(self.model, "fresh")
        fresh.load_parameters(path)  # before its first call
        mine, theirs = self.model.state_dict(), fresh.state_dict()
        assert _same(mine, theirs)
        assert list(fresh.get_parameters()) == list(theirs)  # nothing frozen came along
        if surgery:  # a layer added between the load and the first call is not the file's
            fresh.branches["added"] = nm.Linear(WIDTH, WIDTH)
        if self.ran:
            fresh(_x())
            after = fresh.state_dict()
            assert all(np.array_equal(after[key], mine[key]) for key in mine)
            assert set(after) - set(mine) == ({"branches/added/affine/W",
                                               "branches/added/affine/b"} if surgery else set())
        else:  # the file lacks what the model's own PF code creates at the first call
            with pytest.raises(nm.checkpoint.CheckpointError, match="own/affine/W"):
                fresh(_x())
        fresh.release()

    @rule(steps=st.integers(1, 2))
    def resume_with_solver_states(self, steps):
        """Weights and solver states saved, loaded into a fresh model and a fresh solver,
        then the same steps: bit for bit the weights of going on."""

        def setup(model):
            loss = F.mean(F.squared_error(model(_x()), nn.Variable.from_numpy_array(
                np.full((2, 2), 0.5, np.float32))))  # the graph, then the solver (docs/faq.md)
            solver = S.Adam(0.01)
            solver.set_parameters(model.get_parameters())
            return loss, solver

        def train(loss, solver):
            for _ in range(steps):
                loss.forward()
                solver.zero_grad()
                loss.backward()
                solver.update()

        loss, solver = setup(self.model)
        self.ran = True
        if not solver.get_parameters():
            return  # all frozen: nothing to train
        train(loss, solver)
        weights, states = self._path("ckpt"), self._path("states")
        self.model.save_parameters(weights)
        solver.save_states(states)
        fresh = _like(self.model, "resumed")
        self._freeze_like_the_model(fresh)
        fresh.load_parameters(weights)
        fresh_loss, fresh_solver = setup(fresh)
        fresh_solver.load_states(states)
        train(loss, solver)
        train(fresh_loss, fresh_solver)
        assert _same(_values(self.model), _values(fresh))
        fresh.release()

    @rule()
    def copy_pairs_layer_with_layer(self):
        ema = self.model.clone()
        assert list(ema.get_parameters(grad_only=False)) == list(
            self.model.get_parameters(grad_only=False))
        self.model(_x())
        ema(_x())
        self.ran = True
        assert list(ema.get_parameters(grad_only=False)) == list(
            self.model.get_parameters(grad_only=False))
        ema.release()

    @rule()
    def fork_a_worker(self):
        """A forked worker calls the model and sees what the parent's oracle says."""
        values = _values(self.model)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                y = self.model(_x())
                y.forward()
                self.ran = True
                self.listing_follows_the_rules()
                after = _values(self.model)  # the own PF code's too, if it first ran here
                code = 0 if all(np.array_equal(after[k], values[k]) for k in values) else 2
            finally:
                os._exit(code)
        for _ in range(600):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            threading.Event().wait(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked worker hung")
        assert os.waitstatus_to_exitcode(status) == 0, "the forked worker saw another model"

    # --- the oracle ---------------------------------------------------------------------

    @invariant()
    def listing_follows_the_rules(self):
        places = _places(self.model)
        params = self.model.get_parameters(grad_only=False)
        assert list(params) == _keys(places, self.ran)
        assert list(self.model.state_dict()) == list(params)
        trainable = _keys([(place, layer) for place, layer in places
                           if id(layer) not in self.frozen], self.ran)
        assert list(self.model.get_parameters()) == trainable
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
