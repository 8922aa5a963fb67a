"""A module's parameters are the registry's, enumerated per object (docs/concepts.md)."""

import subprocess
import sys
import textwrap

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest
from conftest import registry_keys
from models import ResUnit, Stack

import nnabla_modules as nm


def test_get_parameters_returns_the_registry_variables():
    model = ResUnit(8, 16, name="net")
    model(nn.Variable((2, 8, 4, 4)))
    registry = nn.get_parameters(grad_only=False)
    for grad_only in (True, False):
        params = model.get_parameters(grad_only=grad_only)
        assert list(params) == [k[len("net/"):] for k in nn.get_parameters(grad_only=grad_only)]
        for key, param in params.items():
            assert registry["net/" + key] is param


def test_grad_only_false_adds_the_running_statistics():
    bn = nm.BatchNorm2d(3, name="bn")
    assert list(bn.get_parameters()) == ["bn/beta", "bn/gamma"]
    assert list(bn.get_parameters(grad_only=False)) == ["bn/beta", "bn/gamma", "bn/mean", "bn/var"]


def test_order_is_the_trees_not_the_calls():
    class Reversed(nm.Module):
        def __init__(self):
            self.second = nm.Affine(2, 2)
            self.first = nm.Affine(2, 2)

        def __call__(self, x):
            return self.second(self.first(x))

    model = Reversed(name="r")
    before_the_call = list(model.get_parameters())
    model(nn.Variable((1, 2)))
    assert list(model.get_parameters()) == before_the_call == [
        "second/affine/W", "second/affine/b", "first/affine/W", "first/affine/b"]


def test_recursive_false_gives_the_modules_own_code_only():
    class Mixed(nm.Module):
        def __init__(self):
            self.fc = nm.Affine(2, 2)

        def __call__(self, x):
            return PF.affine(self.fc(x), 3, name="direct")

    model = Mixed(name="m")
    model(nn.Variable((1, 2)))
    assert list(model.get_parameters(recursive=False)) == ["direct/affine/W", "direct/affine/b"]
    assert list(model.get_parameters()) == ["direct/affine/W", "direct/affine/b",  # its own
                                            "fc/affine/W", "fc/affine/b"]  # then its children


def test_pf_code_inside_call_lands_under_the_prefix():
    class Wrapped(nm.Module):
        def __call__(self, x):  # an unchanged PF function body
            h = PF.convolution(x, 4, (3, 3), name="c1")
            return PF.batch_normalization(h, name="b1")

    model = Wrapped(name="old_block")
    with nn.parameter_scope("caller"):
        model(nn.Variable((1, 2, 5, 5)))
    assert registry_keys() == [
        "old_block/c1/conv/W", "old_block/c1/conv/b", "old_block/b1/bn/beta",
        "old_block/b1/bn/gamma", "old_block/b1/bn/mean", "old_block/b1/bn/var"]
    assert list(model.get_parameters(grad_only=False)) == [k[len("old_block/"):]
                                                           for k in registry_keys()]


def test_two_modules_one_name_each_own_only_theirs():
    conv = nm.Conv2d(3, 3, (1, 1), name="1st")
    bn = nm.BatchNorm2d(3, name="1st")
    bn(conv(nn.Variable((1, 3, 2, 2))))
    assert list(conv.get_parameters(grad_only=False)) == ["conv/W", "conv/b"]
    assert list(bn.get_parameters(grad_only=False)) == ["bn/beta", "bn/gamma", "bn/mean",
                                                        "bn/var"]


def test_drop_in_root_claims_no_unrelated_entries():
    PF.affine(nn.Variable((1, 2)), 2, name="unrelated")
    other = nm.Affine(2, 2, name="other")
    other.get_parameters()
    model = ResUnit(4, 4, name="")
    model(nn.Variable((1, 4, 3, 3)))
    keys = list(model.get_parameters(grad_only=False))
    assert keys and not any(k.startswith(("unrelated", "other")) for k in keys)
    assert len(keys) == 18


def test_pytorch_style_iterators():
    model = Stack(name="s")
    model(nn.Variable((1, 3, 8, 8)))
    assert dict(model.named_parameters()) == dict(model.get_parameters())
    assert list(model.parameters()) == list(model.get_parameters().values())
    names = [name for name, _ in model.named_modules()]
    assert names == ["", "stem", "blocks/0", "blocks/1/0", "blocks/1/1", "heads/cls",
                     "heads/box", "late/0"]
    assert list(model.modules())[0] is model and len(list(model.modules())) == 8
    assert [type(c).__name__ for c in model.children()] == ["Conv2d", "Conv2d", "BatchNorm2d",
                                                             "Conv2d", "Affine", "Affine",
                                                             "Conv2d"]
    inner = model.blocks[1][0]
    assert [n for n, _ in ResUnit(4, 4, name="u").named_children()][:2] == ["conv0", "bn0"]
    assert list(inner.get_parameters()) == ["bn/beta", "bn/gamma"]


def test_enumeration_is_the_same_in_every_process():
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, "tests")
        import nnabla as nn
        from models import ResUnit, Stack
        for model in (ResUnit(8, 16), Stack(), ResUnit(8, 8, name="")):
            model.get_parameters()
            print(model.prefix, list(model.get_parameters(grad_only=False)))
        print(list(nn.get_parameters(grad_only=False)))
    """)
    outputs = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout
        for seed in (1, 2)
    }
    assert len(outputs) == 1


@pytest.mark.parametrize("grad_only", [True, False])
def test_parameters_exist_before_the_first_call(grad_only):
    model = ResUnit(8, 16, name="eager")
    params = model.get_parameters(grad_only=grad_only)
    assert len(params) == (16 if grad_only else 24)
    model(nn.Variable((1, 8, 2, 2)))
    assert model.get_parameters(grad_only=grad_only) == params


def test_parameters_come_back_after_clear_parameters():
    layer = nm.Affine(2, 3, name="fc")
    before = layer.get_parameters()
    nn.clear_parameters()
    after = layer.get_parameters()
    assert list(after) == list(before) and registry_keys() == ["fc/affine/W", "fc/affine/b"]
    assert after["affine/W"] is not before["affine/W"]


def test_enumeration_follows_new_children_new_keys_and_removed_entries():
    class Grows(nm.Module):
        def __init__(self):
            self.layers = [nm.Linear(2, 2)]

        def __call__(self, x):
            for layer in self.layers:
                x = layer(x)
            return PF.affine(x, 2, name="extra")

    model = Grows(name="g")
    assert list(model.get_parameters()) == ["layers/0/affine/W", "layers/0/affine/b"]
    model.layers.append(nm.Linear(2, 2))  # found by the next walk
    assert list(model.get_parameters())[2:] == ["layers/1/affine/W", "layers/1/affine/b"]
    model(nn.Variable((1, 2)))  # the call's own PF code adds keys: the module's own, first
    assert list(model.get_parameters())[:2] == ["extra/affine/W", "extra/affine/b"]
    nn.clear_parameters()  # removed by hand: layers make theirs again, PF code's are gone
    assert list(model.get_parameters()) == [
        "layers/0/affine/W", "layers/0/affine/b", "layers/1/affine/W", "layers/1/affine/b"]
    registry = nn.get_parameters()
    assert all(v is registry[f"g/{k}"] for k, v in model.get_parameters().items())


def test_alike_layers_are_enumerated_one_by_one():
    """Layers with the same keys: what sits in one layer's scope is that layer's alone."""
    model = nm.Sequential(*[nm.Affine(2, 2) for _ in range(4)], name="m")
    keys = list(model.get_parameters())
    with nn.parameter_scope("m/1/affine"):  # code's entry beside a layer's own: that layer's
        nn.parameter.get_parameter_or_create("extra", (1,))
    keys.insert(keys.index("1/affine/b") + 1, "1/affine/extra")
    assert list(model[1].get_parameters()) == ["affine/W", "affine/b", "affine/extra"]
    assert list(model[0].get_parameters()) == list(model[2].get_parameters())
    model[2].get_parameters()["affine/b"].need_grad = False  # by hand, in one layer
    assert list(model.get_parameters()) == [k for k in keys if k != "2/affine/b"]
    assert list(model.get_parameters(grad_only=False)) == keys
    assert list(model.get_parameters(absolute=True)) == [
        f"m/{k}" for k in keys if k != "2/affine/b"]
    registry = nn.parameter.get_current_parameter_scope()["m"]
    del registry["3"]["affine"]["W"]  # removed by hand: the layer makes it again
    params = model.get_parameters(grad_only=False)
    assert list(params) == keys  # the tree's order, wherever the registry put it
    assert params["3/affine/W"] is registry["3"]["affine"]["W"]


class _Held(nm.Module):
    def __init__(self):
        self.layers = [nm.Linear(2, 2) for _ in range(3)]
        self.heads = {"x": nm.Linear(2, 2), "y": nm.Linear(2, 2)}
        self.extra = nm.Linear(2, 2)

    def __call__(self, x):
        return x


def _keys(*names):
    return [f"{name}/affine/{key}" for name in names for key in ("W", "b")]


ALL_HELD = ("layers/0", "layers/1", "layers/2", "heads/x", "heads/y", "extra")


def _pop(net):
    net.layers.pop()


def _del_item(net):
    del net.layers[2]


def _slice(net):
    net.layers[:] = net.layers[:2]


def _dict_pop(net):
    net.heads.pop("y")


def _del_attr(net):
    del net.extra


def _set_none(net):
    net.extra = None


@pytest.mark.parametrize("take_out, gone", [
    (_pop, "layers/2"), (_del_item, "layers/2"), (_slice, "layers/2"),
    (_dict_pop, "heads/y"), (_del_attr, "extra"), (_set_none, "extra"),
])
def test_enumeration_follows_children_taken_out_and_put_back(take_out, gone):
    """No name or key changes when a held child leaves the tree or comes back."""
    net = _Held(name="net")
    assert list(net.get_parameters()) == _keys(*ALL_HELD)
    child = dict(net.named_modules())[gone]
    take_out(net)
    expected = _keys(*(name for name in ALL_HELD if name != gone))
    assert list(net.get_parameters()) == expected
    assert list(net.state_dict()) == expected
    nm.Linear(2, 2, name="other").get_parameters()  # another module names and owns keys
    assert list(net.get_parameters()) == expected
    if take_out is _pop:  # the same child, put back: no adoption, no new key
        net.layers.append(child)
        assert list(net.get_parameters()) == _keys(*ALL_HELD)


class _CallOrder(nm.Module):
    """Declared in one order, called in another; one layer the first call does not use."""

    def __init__(self):
        self.head = nm.Linear(8, 10)
        self.blocks = [nm.Sequential(nm.Affine(8, 8), name=""),
                       {"unused": nm.Affine(8, 8), "used": nm.Conv2d(8, 8, 3, pad=1)}]
        self.body = nm.Conv2d(1, 8, 3, pad=1)

    def __call__(self, x):
        h = self.blocks[1]["used"](self.body(x))
        return self.head(self.blocks[0](F.mean(h, axis=(2, 3))))


@pytest.mark.parametrize("early", ["get_parameters", "state_dict", "freeze", "load"])
def test_the_order_is_the_trees_whatever_was_created_before(early, tmp_path):
    """Multi-process training pairs parameters by position: a process that loaded a file
    before its first call lists them in the order of one that did not, before and
    after its calls."""
    x = nn.Variable((2, 1, 4, 4))
    plain = _CallOrder(name="plain")
    plain(x)
    expected = list(plain.get_parameters(grad_only=False))
    assert expected[:2] == ["head/affine/W", "head/affine/b"]  # attributes', not the call's
    plain.save_parameters(str(tmp_path / "plain.h5"))
    model = _CallOrder(name="model")
    if early == "load":
        model.load_parameters(str(tmp_path / "plain.h5"))
    elif early == "freeze":
        model.freeze()
    else:
        getattr(model, early)()
    assert list(model.get_parameters(grad_only=False)) == expected
    model(x)
    assert list(model.get_parameters(grad_only=False)) == expected
    registry = [k for k in nn.get_parameters(grad_only=False) if k.startswith("model/")]
    assert sorted(registry) == sorted(f"model/{k}" for k in expected)
    model(x)  # later calls change nothing
    assert list(model.get_parameters(grad_only=False)) == expected
