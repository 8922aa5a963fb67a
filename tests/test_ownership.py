"""Ownership: which registry entries are a module's (docs/concepts.md, "Ownership").

Each test is written against the public API as a user would write it.
"""

import copy
import gc
import threading

import nnabla as nn
import nnabla.functions as F
import nnabla.initializer as I
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from nnabla.parameter import get_parameter_or_create  # by name, as real models do
from nnabla.parametric_functions import parametric_function_api

import nnabla_modules as nm
from nnabla_modules.checkpoint import CheckpointError


@parametric_function_api("sn_conv")
def sn_conv(x, outmaps, kernel, fix_parameters=False):
    """A spectral-normalized convolution in the style of SAGAN's models.py."""
    w = get_parameter_or_create(
        "W", (outmaps, x.shape[1]) + tuple(kernel), I.NormalInitializer(0.02), True,
        not fix_parameters,
    )
    u = get_parameter_or_create("u", (outmaps,), I.NormalInitializer(), False)
    w_sn = F.spectral_norm(w, u, dim=0, itr=1)
    b = get_parameter_or_create("b", (outmaps,), I.ConstantInitializer(), True, not fix_parameters)
    return F.convolution(x, w_sn, b, pad=(1, 1))


class SNNet(nm.Module):
    def __call__(self, x):
        h = F.relu(sn_conv(x, 4, (3, 3), name="c1"))
        return sn_conv(h, 2, (3, 3), name="c2")


SN_KEYS = ["c1/sn_conv/W", "c1/sn_conv/u", "c1/sn_conv/b", "c2/sn_conv/W", "c2/sn_conv/u",
           "c2/sn_conv/b"]
X = nn.Variable((2, 3, 8, 8))


# --- every way code reaches the registry ------------------------------------------------


def test_by_name_imports_of_get_parameter_or_create_are_owned():
    net = SNNet(name="sn")
    net(X)
    assert list(net.get_parameters(grad_only=False)) == SN_KEYS
    assert list(net.get_parameters()) == [k for k in SN_KEYS if not k.endswith("/u")]


def test_entries_loaded_by_nnabla_then_used_by_the_call_are_owned(tmp_path):
    SNNet(name="sn")(X)
    nn.save_parameters(str(tmp_path / "all.h5"))
    nn.clear_parameters()
    nn.load_parameters(str(tmp_path / "all.h5"))
    net = SNNet(name="sn")
    net(X)
    assert list(net.get_parameters(grad_only=False)) == SN_KEYS


def test_freeze_holds_for_by_name_imports_through_rebuilds():
    net = SNNet(name="sn")
    net(X)
    net.freeze()
    for _ in range(3):
        y = net(X)
        assert net.get_parameters() == {}
        assert all(not v.need_grad for v in nn.get_parameters(grad_only=False).values())
        y.forward()
    # The graph computes no gradient for frozen weights either.
    conv = y.parent
    assert not conv.inputs[1].need_grad
    net.unfreeze()
    assert list(net.get_parameters()) == [k for k in SN_KEYS if not k.endswith("/u")]


def test_get_parameter_and_set_parameter_inside_a_call_are_owned():
    class Raw(nm.Module):
        def __call__(self, x):
            if nn.parameter.get_parameter("scale") is None:
                scale = nn.Variable.from_numpy_array(np.ones(1), need_grad=True)
                nn.parameter.set_parameter("scale", scale)
            with nn.parameter_scope("inner"):
                w = get_parameter_or_create("w", (1,), I.ConstantInitializer(2.0))
            return x * nn.parameter.get_parameter("scale") * w

    raw = Raw(name="raw")
    raw(nn.Variable((1,)))
    assert list(raw.get_parameters()) == ["scale", "inner/w"]


def test_a_module_does_not_own_what_other_code_put_under_its_prefix():
    class Net(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(3, 2)

        def __call__(self, x):
            return self.fc(x)

    with nn.parameter_scope("net"):
        PF.affine(nn.Variable((1, 3)), 5, name="stray")  # plain PF code, not the module's
    net = Net(name="net")
    net(nn.Variable((1, 3)))
    assert list(net.get_parameters()) == ["fc/affine/W", "fc/affine/b"]


def test_modules_built_in_a_call_with_a_name_are_the_callers():
    class Builder(nm.Module):
        def __call__(self, x):
            h = nm.Linear(3, 4, name="fc1")(x)
            return nm.Linear(4, 2, name="fc2")(h)

    model = Builder(name="b")
    model(nn.Variable((1, 3)))
    keys = ["fc1/affine/W", "fc1/affine/b", "fc2/affine/W", "fc2/affine/b"]
    assert list(model.get_parameters()) == keys
    assert list(model.state_dict()) == keys
    model.freeze()
    model(nn.Variable((1, 3)))  # new temporary modules: the freeze still holds
    assert model.get_parameters() == {}
    assert all(not v.need_grad for v in model.get_parameters(grad_only=False).values())


# --- strict loads before the first call --------------------------------------------------


def _pf_net(x):
    h = F.relu(PF.affine(x, 4, name="fc1"))
    return PF.affine(h, 2, name="fc2")


def test_a_strict_load_from_another_scope_fails_at_the_first_call(tmp_path):
    with nn.parameter_scope("other"):
        _pf_net(nn.Variable((1, 3)))
    nn.save_parameters(str(tmp_path / "other.h5"))  # keys "other/fc1/..."
    nn.clear_parameters()
    model = nm.wrap(_pf_net)(name="model")
    model.load_parameters(str(tmp_path / "other.h5"))  # cannot be checked yet
    with pytest.raises(CheckpointError, match="not used by the call") as error:
        model(nn.Variable((1, 3)))
    assert "model/other/fc1/affine/W" in str(error.value)
    assert "missing from the file" in str(error.value)
    assert "model/other" not in {k.rsplit("/", 3)[0] for k in nn.get_parameters()}
    assert model.get_parameters() == {}
    model(nn.Variable((1, 3)))  # a call without a pending load: fresh weights
    assert len(model.get_parameters()) == 4


def test_a_strict_load_that_fits_passes_the_first_call(tmp_path):
    source = nm.wrap(_pf_net)(name="source")
    source(nn.Variable((1, 3)))
    source.save_parameters(str(tmp_path / "net.h5"))
    model = nm.wrap(_pf_net)(name="model")
    model.load_parameters(str(tmp_path / "net.h5"))
    assert list(model.get_parameters()) == list(source.get_parameters())
    model(nn.Variable((1, 3)))
    for key, value in source.get_parameters().items():
        assert np.array_equal(model.get_parameters()[key].d, value.d)


def test_a_lenient_load_warns_about_keys_the_call_did_not_use():
    model = nm.wrap(_pf_net)(name="model")
    model.load_state_dict({"fc1/affine/W": np.ones((3, 4)), "typo/affine/W": np.ones(2)},
                          strict=False)
    with pytest.warns(UserWarning, match="typo/affine/W"):
        model(nn.Variable((1, 3)))
    assert np.all(model.get_parameters()["fc1/affine/W"].d == 1)
    assert "typo/affine/W" not in model.get_parameters()


# --- kept and replaced modules --------------------------------------------------------------


class Encoder(nm.Module):
    def __init__(self):
        self.fc = nm.Linear(3, 4)

    def __call__(self, x):
        return self.fc(x)


class Net(nm.Module):
    def __init__(self):
        self.encoder = Encoder()
        self.head = nm.Linear(4, 2)

    def __call__(self, x):
        return self.head(self.encoder(x))


def test_a_kept_submodule_keeps_its_prefix_and_weights():
    net = Net()
    net(nn.Variable((1, 3)))
    enc = net.encoder
    enc.get_parameters()["fc/affine/W"].d = 7.0
    del net
    gc.collect()
    other = Net()
    other(nn.Variable((1, 3)))
    assert other.prefix != "net"
    assert enc.prefix == "net/encoder"
    assert np.all(enc.get_parameters()["fc/affine/W"].d == 7.0)
    assert not np.all(other.encoder.get_parameters()["fc/affine/W"].d == 7.0)
    del enc
    gc.collect()
    assert Net().prefix == "net"  # free again once nothing holds it


def test_replacing_a_layer_gives_fresh_weights():
    net = Net(name="net")
    net(nn.Variable((1, 3)))
    old_w = net.head.get_parameters()["affine/W"]
    old_w.d = 7.0
    net.head = nm.Linear(4, 3)
    y = net(nn.Variable((1, 3)))
    assert y.shape == (1, 3)
    new_w = net.head.get_parameters()["affine/W"]
    assert new_w is not old_w and new_w.shape == (4, 3)
    assert not np.all(new_w.d == 7.0)


def test_replacing_with_the_same_shape_gives_fresh_values_too():
    net = Net(name="net")
    net(nn.Variable((1, 3)))
    net.head.get_parameters()["affine/W"].d = 7.0
    old = net.head
    net.head = nm.Linear(4, 2)
    net(nn.Variable((1, 3)))
    assert not np.all(net.head.get_parameters()["affine/W"].d == 7.0)
    with pytest.raises(RuntimeError, match="was replaced"):
        old(nn.Variable((1, 4)))


def test_replacing_a_list_item_gives_fresh_weights():
    class Stack(nm.Module):
        def __init__(self):
            self.blocks = [nm.Linear(3, 3) for _ in range(3)]

        def __call__(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    stack = Stack(name="stack")
    stack(nn.Variable((1, 3)))
    stack.blocks[1].get_parameters()["affine/W"].d = 7.0
    stack.blocks[1] = nm.Linear(3, 3)
    stack(nn.Variable((1, 3)))
    assert not np.all(stack.get_parameters()["blocks/1/affine/W"].d == 7.0)


def test_replacing_a_module_still_held_elsewhere_is_an_error():
    net = Net(name="net")
    net(nn.Variable((1, 3)))
    net.spare = net.head
    with pytest.raises(ValueError, match="still holds"):
        net.head = nm.Linear(4, 2)
    assert list(net.head.get_parameters()) == ["affine/W", "affine/b"]


# --- threads ---------------------------------------------------------------------------------


def test_threads_get_the_keys_they_would_get_alone():
    def work(i, errors):
        try:
            for _ in range(5):
                model = Net(name=f"t{i}")
                model(nn.Variable((1, 3)))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    errors = []
    threads = [threading.Thread(target=work, args=(i, errors)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    expected = {f"t{i}/{k}" for i in range(6) for k in
                ["encoder/fc/affine/W", "encoder/fc/affine/b", "head/affine/W", "head/affine/b"]}
    assert set(nn.get_parameters()) == expected


# --- NNabla's own nn.Module --------------------------------------------------------------------


def test_holding_an_nnabla_module_is_refused():
    from nnabla.core.module import Module as NNablaModule

    class Theirs(NNablaModule):
        def call(self, x):
            return PF.affine(x, 2)

    class Ours(nm.Module):
        def __call__(self, x):
            return x

    ours = Ours()
    with pytest.raises(TypeError, match="NNabla nn.Module"):
        ours.block = Theirs()
    with pytest.raises(TypeError, match="NNabla nn.Module"):
        ours.blocks = [Theirs()]


def test_ours_inside_an_nnabla_module_is_refused():
    from nnabla.core.module import Module as NNablaModule

    class Holder(NNablaModule):
        def __init__(self):
            self.fc = nm.Linear(3, 2, name="fc")

        def call(self, x):
            return self.fc(x)

    with pytest.raises(RuntimeError, match="nn.Module"):
        Holder()

    fc = nm.Linear(3, 2, name="fc")

    class Calls(NNablaModule):
        def call(self, x):
            return fc(x)

    with pytest.raises(RuntimeError, match="nn.Module"):
        Calls()(nn.Variable((1, 3)))


# --- name="" siblings -----------------------------------------------------------------------------


def test_two_unnamed_sibling_layers_of_one_kind_warn():
    class Twins(nm.Module):
        def __init__(self):
            self.a = nm.Linear(3, 3, name="")
            self.b = nm.Linear(3, 3, name="")

        def __call__(self, x):
            return self.b(self.a(x))

    with pytest.warns(nm.SharedParameterWarning, match="affine/"):
        Twins(name="twins")(nn.Variable((1, 3)))


def test_one_unnamed_layer_called_twice_does_not_warn(recwarn):
    class Twice(nm.Module):
        def __init__(self):
            self.a = nm.Linear(3, 3, name="")

        def __call__(self, x):
            return self.a(self.a(x))

    Twice(name="twice")(nn.Variable((1, 3)))
    assert not [w for w in recwarn if issubclass(w.category, nm.SharedParameterWarning)]


# --- wrap() with name="" ------------------------------------------------------------------------


def test_two_drop_in_networks_own_only_their_own_weights(tmp_path):
    def generator(z):
        return PF.affine(z, 4, name="gen_fc")

    def discriminator(x):
        return PF.affine(x, 1, name="dis_fc")

    generator(nn.Variable((1, 2)))
    discriminator(nn.Variable((1, 4)))
    nn.save_parameters(str(tmp_path / "gan.h5"))
    nn.clear_parameters()
    nn.load_parameters(str(tmp_path / "gan.h5"))
    G = nm.wrap(generator)(name="")
    D = nm.wrap(discriminator)(name="")
    D(G(nn.Variable((1, 2))))
    assert list(G.get_parameters()) == ["gen_fc/affine/W", "gen_fc/affine/b"]
    assert list(D.get_parameters()) == ["dis_fc/affine/W", "dis_fc/affine/b"]
    D.freeze()
    assert G.get_parameters()["gen_fc/affine/W"].need_grad
    D.release()
    assert "gen_fc/affine/W" in nn.get_parameters()


def test_a_strict_load_of_a_two_network_file_into_one_fails_at_its_call(tmp_path):
    def generator(z):
        return PF.affine(z, 4, name="gen_fc")

    generator(nn.Variable((1, 2)))
    PF.affine(nn.Variable((1, 4)), 1, name="dis_fc")
    nn.save_parameters(str(tmp_path / "gan.h5"))
    nn.clear_parameters()
    G = nm.wrap(generator)(name="")
    G.load_parameters(str(tmp_path / "gan.h5"))
    with pytest.raises(CheckpointError, match="dis_fc/affine/W"):
        G(nn.Variable((1, 2)))
    assert nn.get_parameters() == {}


# --- clone ---------------------------------------------------------------------------------------


def test_a_clone_of_a_lazily_built_module_owns_its_copy_at_once(tmp_path):
    net = nm.wrap(_pf_net)(name="lazy")
    net(nn.Variable((1, 3)))
    twin = net.clone()
    assert list(twin.state_dict()) == list(net.state_dict())
    twin.save_parameters(str(tmp_path / "twin.h5"))
    twin(nn.Variable((1, 3)))
    for key, value in net.get_parameters().items():
        assert np.array_equal(twin.get_parameters()[key].d, value.d)


# --- smaller ones --------------------------------------------------------------------------------


def test_an_attribute_that_hides_a_method_is_refused():
    class Bad(nm.Module):
        def __init__(self):
            self.modules = [nm.Linear(2, 2)]

    with pytest.raises(AttributeError, match="modules"):
        Bad()


def test_copy_copy_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="clone"):
        copy.copy(nm.Linear(2, 2))


def test_parameters_passed_to_a_solver_gives_a_clear_error():
    import nnabla.solvers as S

    layer = nm.Linear(2, 2)
    with pytest.raises(TypeError, match="get_parameters"):
        S.Sgd().set_parameters(layer.parameters())
    assert len(list(layer.parameters())) == 2


@pytest.mark.parametrize("state", [[("a", 1)], None, {1: np.ones(1)}])
def test_load_state_dict_of_the_wrong_type_is_a_type_error(state):
    with pytest.raises(TypeError, match="Linear"):
        nm.Linear(2, 2).load_state_dict(state)


def test_a_root_that_holds_another_roots_layer_says_so_when_saving(tmp_path):
    shared = nm.Linear(3, 2)

    class Owner(nm.Module):
        def __init__(self):
            self.fc = shared

        def __call__(self, x):
            return self.fc(x)

    class User(nm.Module):
        def __init__(self):
            self.fc = shared

        def __call__(self, x):
            return self.fc(x)

    owner, user = Owner(), User()
    user(nn.Variable((1, 3)))
    assert list(owner.get_parameters()) == ["fc/affine/W", "fc/affine/b"]
    with pytest.raises(ValueError, match="cannot hold Linear 'owner/fc' as 'fc': it belongs"):
        user.save_parameters(str(tmp_path / "u.h5"))


def test_super_init_in_haiku_style():
    class HaikuBlock(nm.Module):
        def __init__(self, width, name=None):
            super().__init__(name=name)
            self.fc = nm.Linear(width, width)

    class Plain(nm.Module):
        def __init__(self, width):
            super().__init__()
            self.fc = nm.Linear(width, width)

    assert HaikuBlock(3, name="blk").prefix == "blk"
    assert HaikuBlock(3).prefix == "haiku_block"
    assert Plain(3, name="p").prefix == "p"
    assert list(Plain(3).get_parameters()) == ["fc/affine/W", "fc/affine/b"]


def test_absolute_keys_merge_across_modules():
    net = Net(name="net")
    params = {**net.encoder.get_parameters(absolute=True), **net.head.get_parameters(absolute=True)}
    assert list(params) == ["net/encoder/fc/affine/W", "net/encoder/fc/affine/b",
                            "net/head/affine/W", "net/head/affine/b"]
    registry = nn.get_parameters()
    assert all(params[key] is registry[key] for key in params)


def test_lenient_loads_of_one_file_into_two_drop_in_networks_split_it(tmp_path):
    def generator(z):
        return PF.affine(z, 4, name="gen_fc")

    def discriminator(x):
        return PF.affine(x, 1, name="dis_fc")

    discriminator(generator(nn.Variable((1, 2))))
    nn.save_parameters(str(tmp_path / "gan.h5"))
    saved = {k: v.d.copy() for k, v in nn.get_parameters().items()}
    nn.clear_parameters()
    G = nm.wrap(generator)(name="")
    D = nm.wrap(discriminator)(name="")
    G.load_parameters(str(tmp_path / "gan.h5"), strict=False)
    D.load_parameters(str(tmp_path / "gan.h5"), strict=False)
    with pytest.warns(UserWarning, match="not used"):
        D(G(nn.Variable((1, 2))))
    assert list(G.get_parameters()) == ["gen_fc/affine/W", "gen_fc/affine/b"]
    assert list(D.get_parameters()) == ["dis_fc/affine/W", "dis_fc/affine/b"]
    for key, value in {**G.get_parameters(), **D.get_parameters()}.items():
        assert np.array_equal(value.d, saved[key])
    D.freeze()
    assert all(v.need_grad for v in G.get_parameters(grad_only=False).values())


# --- forward hooks ---------------------------------------------------------------------------


def test_forward_hooks_see_each_call_and_can_replace_the_output():
    net = Net(name="net")
    seen = []
    handle = net.head.register_forward_hook(lambda m, a, k, y: seen.append((m.prefix, y.shape)))
    with nm.register_module_forward_hook(lambda m, a, k, y: seen.append(("all", m.prefix))):
        net(nn.Variable((1, 3)))
    assert seen == [("all", "net/encoder/fc"), ("all", "net/encoder"), ("all", "net/head"),
                    ("net/head", (1, 2)), ("all", "net")]
    seen.clear()
    net(nn.Variable((1, 3)))
    assert seen == [("net/head", (1, 2))]
    handle.remove()
    net(nn.Variable((1, 3)))
    assert seen == [("net/head", (1, 2))]

    doubled = net.register_forward_hook(lambda m, a, k, y: y * 2)
    pre = net.head.register_forward_pre_hook(lambda m, a, k: ((a[0] * 0,), k))
    y = net(nn.Variable.from_numpy_array(np.ones((1, 3))))
    y.forward()
    bias = net.head.get_parameters()["affine/b"].d
    assert np.allclose(y.d, 2 * bias)
    doubled.remove()
    pre.remove()
    assert list(net.get_parameters()) == ["encoder/fc/affine/W", "encoder/fc/affine/b",
                                          "head/affine/W", "head/affine/b"]


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        nm.Linear(2, 2).register_forward_hook(None)


def test_a_layer_named_like_its_scope_loads_its_own_relative_keys(tmp_path):
    source = nm.BatchNormalization(n_features=None, name="bn")  # keys "bn/beta", ...
    source(nn.Variable((2, 3, 4, 4)))
    source.get_parameters()["bn/beta"].d = 5.0
    source.save_parameters(str(tmp_path / "bn.h5"))
    nn.clear_parameters()
    again = nm.BatchNormalization(n_features=None, name="bn")
    again.load_parameters(str(tmp_path / "bn.h5"))
    again(nn.Variable((2, 3, 4, 4)))
    assert np.all(again.get_parameters()["bn/beta"].d == 5.0)


# --- found by attacking the docs ---------------------------------------------------------------


def test_a_load_into_a_reused_automatic_name_is_what_the_first_call_uses():
    class P(nm.Module):
        def __call__(self, x):
            return PF.affine(x, 2, name="fc")

    x = nn.Variable.from_numpy_array(np.ones((1, 4)))
    p = P()
    p(x)
    del p
    gc.collect()
    p = P()  # takes the dead model's automatic name
    p.load_state_dict({"fc/affine/W": np.zeros((4, 2)), "fc/affine/b": np.full(2, 7.0)})
    y = p(x)
    y.forward()
    assert np.all(y.d == 7.0)


def test_swapping_two_trained_children_is_refused():
    net = Net(name="net")
    net(nn.Variable((1, 3)))
    with pytest.raises(ValueError, match="cannot hold"):
        net.encoder, net.head = net.head, net.encoder
    assert net.encoder.prefix == "net/encoder" and net.head.prefix == "net/head"


def test_a_trained_layer_of_another_model_is_refused():
    pretrained = Net(name="pretrained")
    pretrained(nn.Variable((1, 3)))
    new = Net(name="new")
    with pytest.raises(ValueError, match="hold the model that owns it"):
        new.head = pretrained.head
    new.spare = new.head  # a second attribute for one module of this model: sharing


def test_a_failing_first_call_undoes_the_load():
    class TwoLayers(nm.Module):
        def __init__(self):
            self.a = nm.Linear(4, 3)
            self.b = nm.Linear(None, 2)

        def __call__(self, x):
            return self.b(self.a(x))

    net = TwoLayers(name="net")
    before = net.a.get_parameters()["affine/W"].d.copy()
    net.load_state_dict({"a/affine/W": np.ones((4, 3)), "a/affine/b": np.ones(3),
                         "b/affine/W": np.ones((5, 2)), "b/affine/b": np.ones(2)})
    with pytest.raises(CheckpointError, match="undone"):
        net(nn.Variable((1, 4)))
    assert np.array_equal(net.a.get_parameters()["affine/W"].d, before)
    assert "net/b/affine/W" not in nn.get_parameters()
    y = net(nn.Variable((1, 4)))  # works again, with fresh weights for b
    assert y.shape == (1, 2)


def test_unfreeze_after_a_rebuild_restores_modules_built_in_the_call():
    class A(nm.Module):
        def __call__(self, x):
            return nm.Linear(4, 2, name="tmp")(x)

    a = A(name="a")
    a(nn.Variable((1, 4)))
    a.freeze()
    a(nn.Variable((1, 4)))
    a.unfreeze()
    assert list(a.get_parameters()) == ["tmp/affine/W", "tmp/affine/b"]


def test_a_module_called_but_not_held_warns():
    import types

    class Holder(nm.Module):
        def __init__(self):
            self.cfg = types.SimpleNamespace(fc=nm.Linear(4, 2))

        def __call__(self, x):
            return self.cfg.fc(x)

    with pytest.warns(UserWarning, match="does not hold it"):
        Holder(name="h")(nn.Variable((1, 4)))


def test_an_nnabla_module_built_in_a_call_is_refused():
    from nnabla.core.module import Module as NNablaModule

    class Old(NNablaModule):
        def call(self, x):
            return PF.affine(x, 2)

    class Uses(nm.Module):
        def __call__(self, x):
            return Old()(x)

    with pytest.raises(RuntimeError, match="outside NNabla's parameter registry"):
        Uses(name="u")(nn.Variable((1, 4)))


@pytest.mark.parametrize("strict", [None, "yes", 1])
def test_strict_must_be_a_bool(strict):
    with pytest.raises(TypeError, match="strict"):
        nm.Linear(2, 2).load_state_dict({}, strict=strict)


def test_an_error_class_with_other_arguments_keeps_its_kind_when_named(monkeypatch):
    from nnabla_modules import files

    class Odd(ValueError):
        def __init__(self, code, text):
            super().__init__(f"{code}: {text}")

    def failing(*args, **kwargs):
        raise Odd(7, "odd")

    monkeypatch.setattr(files, "open_parameters", failing)
    with pytest.raises(Odd) as error:
        nm.Linear(2, 2, name="fc").load_parameters("x.h5")
    assert "fc" in error.value.__notes__[0]


def test_values_too_large_for_float32_are_refused_and_nothing_changes():
    fc = nm.Linear(2, 3, name="fc")
    before = fc.get_parameters()["affine/W"].d.copy()
    with pytest.raises(CheckpointError, match="infinite once converted"):
        fc.load_state_dict({"affine/W": np.full((2, 3), 1e300), "affine/b": np.zeros(3)})
    assert np.array_equal(fc.get_parameters()["affine/W"].d, before)
    fc.load_state_dict({"affine/W": np.full((2, 3), np.inf), "affine/b": np.zeros(3)})
    assert np.all(np.isinf(fc.get_parameters()["affine/W"].d))  # infinite in the file: as is


def test_a_wrapped_lambda_has_a_name_fit_for_registry_keys():
    model = nm.wrap(lambda x: PF.affine(x, 2))()
    model(nn.Variable((1, 3)))
    assert model.prefix == "function_module"
    assert list(nn.get_parameters()) == ["function_module/affine/W", "function_module/affine/b"]


class _Task(nm.Module):
    def __init__(self, encoder):
        self.encoder = encoder
        self.head = nm.Linear(4, 2)

    def __call__(self, x):
        return self.head(self.encoder(x))


@pytest.mark.parametrize("how", ["attribute", "list", "list appended"])
def test_a_module_of_another_live_model_is_refused_at_use_before_it_has_weights(how):
    """One prefix per module: the second model would train it without listing it."""
    encoder = nm.Linear(4, 4)
    first = _Task(encoder, name="first")

    class Holder(nm.Module):
        def __init__(self):
            self.parts = []

    if how == "attribute":
        second = _Task(encoder, name="second")
    else:
        second = Holder(name="second")
        if how == "list":
            second.parts = [encoder]
        else:
            second.parts.append(encoder)  # found by the next walk
    for use in (second.get_parameters, second.state_dict, second.freeze):
        with pytest.raises(ValueError, match=r"belongs to _Task 'first'.*load_state_dict"):
            use()
    assert encoder.prefix == "first/encoder"
    assert list(first.get_parameters()) == [
        "encoder/affine/W", "encoder/affine/b", "head/affine/W", "head/affine/b"]


def test_a_module_whose_model_died_unused_is_held_anew():
    encoder = nm.Linear(4, 4)
    first = _Task(encoder, name="first")
    del first
    gc.collect()
    second = _Task(encoder, name="second")
    assert encoder.prefix == "second/encoder"
    assert list(second.get_parameters()) == [
        "encoder/affine/W", "encoder/affine/b", "head/affine/W", "head/affine/b"]
    assert sorted(nn.get_parameters()) == sorted(f"second/{k}" for k in second.get_parameters())


def test_a_module_built_in_the_owners_init_may_refer_to_its_sibling():
    class Decoder(nm.Module):
        def __init__(self, encoder):
            self.tied = encoder  # the encoder's model is being built: this joins it
            self.out = nm.Linear(4, 4)

        def __call__(self, x):
            return self.out(self.tied(x))

    class AutoEncoder(nm.Module):
        def __init__(self):
            self.encoder = nm.Linear(4, 4)
            self.decoder = Decoder(self.encoder)

        def __call__(self, x):
            return self.decoder(x)

    model = AutoEncoder(name="ae")
    model(nn.Variable((1, 4)))
    assert sorted(model.get_parameters()) == [
        "decoder/out/affine/W", "decoder/out/affine/b", "encoder/affine/W", "encoder/affine/b"]
    assert model.decoder.tied is model.encoder and model.encoder.prefix == "ae/encoder"


def test_a_slice_of_a_trained_sequential_runs_its_items_and_owns_none():
    seq = nm.Sequential(nm.Linear(3, 3), F.relu, nm.Linear(3, 3), name="seq")
    x = nn.Variable.from_numpy_array(np.ones((1, 3), np.float32))
    seq(x)
    features = seq[:2]
    y, expected = features(x), F.relu(seq[0](x))
    y.forward()
    expected.forward()
    assert np.array_equal(y.d, expected.d)
    assert features[0] is seq[0]
    # Listed and frozen through its items, keyed as in the original (PyTorch's slices)
    assert list(features.get_parameters()) == ["0/affine/W", "0/affine/b"]
    assert features.get_parameters()["0/affine/W"] is seq.get_parameters()["0/affine/W"]
    assert list(features.state_dict()) == ["0/affine/W", "0/affine/b"]
    assert list(seq[1:].get_parameters(absolute=True)) == ["seq/2/affine/W", "seq/2/affine/b"]
    seq[2:].freeze()
    assert list(seq.get_parameters()) == ["0/affine/W", "0/affine/b"]
    with pytest.raises(ValueError, match="a view that owns none of its items' weights"):
        features.load_state_dict(features.state_dict())


def test_loading_by_name_then_building_uses_the_loaded_values(tmp_path):
    """NNabla's load-then-build idiom, after an auto-named model of that name died."""

    class Net(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(4, 2)

        def __call__(self, x):
            return self.fc(x)

    x = nn.Variable.from_numpy_array(np.ones((1, 4), np.float32))
    model = Net()
    model.fc.get_parameters()["affine/W"].d = 0.5  # trained
    model(x)
    nn.save_parameters(str(tmp_path / "net.h5"))
    del model
    gc.collect()
    nn.load_parameters(str(tmp_path / "net.h5"))
    model = Net()
    assert model.prefix == "net"
    model(x)
    assert np.all(model.get_parameters()["fc/affine/W"].d == 0.5)

    del model  # untouched by name before the next model: dropped, fresh weights
    gc.collect()
    model = Net()
    model(x)
    assert not np.all(model.get_parameters()["fc/affine/W"].d == 0.5)


@pytest.mark.parametrize("frozen", [False, True])
def test_a_replaced_module_held_again_takes_its_weights_back(frozen):
    net = Net(name="net")
    x = nn.Variable.from_numpy_array(np.ones((1, 3), np.float32))
    net(x)
    old = net.head
    if frozen:
        old.freeze()
    trained = {k: v for k, v in old.get_parameters(grad_only=False).items()}
    net.head = nm.Linear(4, 2)  # try another head
    net(x)
    net.head = old  # and put the trained one back
    assert net.head.get_parameters(grad_only=False) == trained  # the same Variables
    assert all(v.need_grad is not frozen for v in trained.values())
    assert list(net.get_parameters(grad_only=False))[-2:] == ["head/affine/W", "head/affine/b"]
    net(x)  # a rebuild keeps a frozen head frozen
    assert all(v.need_grad is not frozen for v in trained.values())
    assert set(nn.get_parameters(grad_only=False)) == {
        f"net/{k}" for k in net.get_parameters(grad_only=False)}


def test_a_replaced_module_does_not_take_back_a_place_taken_by_other_entries():
    net = Net(name="net")
    net(nn.Variable((1, 3)))
    old = net.head
    trained = old.get_parameters()["affine/W"]
    net.head = nm.Linear(4, 2)
    with nn.parameter_scope("net/spare/affine"):
        get_parameter_or_create("W", (1,))  # PF code's entry where it would go
    with pytest.raises(ValueError, match="registry holds affine/W already"):
        net.spare = old
    assert "spare" not in vars(net)
    net.other = old  # nothing changed by the refusal: held elsewhere, the weights come back
    assert old.get_parameters()["affine/W"] is trained


def test_blocks_built_apart_that_share_a_layer_join_one_model():
    shared = nm.Linear(4, 4)
    first, second = _Task(shared, name="first"), _Task(shared, name="second")

    class Both(nm.Module):
        def __init__(self):
            self.first, self.second = first, second

        def __call__(self, x):
            return self.first(x), self.second(x)

    both = Both(name="both")
    both(nn.Variable((1, 4)))
    assert sorted(both.get_parameters()) == sorted(
        [f"{part}/head/affine/{key}" for part in ("first", "second") for key in "Wb"]
        + ["first/encoder/affine/W", "first/encoder/affine/b"])
    assert second.get_parameters() == {
        k: v for k, v in both.second.get_parameters().items()}  # its own part, listed


@pytest.mark.parametrize("touched", [False, True])
def test_a_kept_submodule_works_whatever_was_asked_of_it_before(touched):
    """Its prefix is its parent's, even if nothing asked for it while the parent lived."""
    net = Net()
    x = nn.Variable((1, 3))
    net(x)
    net.get_parameters()["encoder/fc/affine/W"].d = 7.0
    enc = net.encoder
    if touched:
        enc.get_parameters()
    del net
    gc.collect()
    assert enc.prefix == "net/encoder"
    assert enc(x).shape == (1, 4)
    assert np.all(enc.get_parameters()["fc/affine/W"].d == 7.0)
    assert list(enc.get_parameters(absolute=True)) == [
        "net/encoder/fc/affine/W", "net/encoder/fc/affine/b"]


def test_a_part_of_a_replaced_module_refuses_to_run():
    class Block(nm.Module):
        def __init__(self):
            self.a = nm.Linear(4, 4)

        def __call__(self, x):
            return self.a(x)

    net = Net(name="net")
    net.blk = Block()
    net.blk(nn.Variable((1, 4)))
    old = net.blk
    net.blk = Block()
    with pytest.raises(RuntimeError, match="Linear 'net/blk/a' is a part of Block 'net/blk', "
                                           "which was replaced"):
        old.a(nn.Variable((1, 4)))
    assert "net/blk/a/affine/W" not in nn.get_parameters()


@pytest.mark.parametrize("container", ["list", "dict"])
def test_a_replaced_module_put_back_in_a_list_takes_its_weights_back(container):
    class Holder(nm.Module):
        def __init__(self):
            self.layers = [nm.Linear(4, 4)] if container == "list" else {0: nm.Linear(4, 4)}

        def __call__(self, x):
            return self.layers[0](x)

    x = nn.Variable((1, 4))
    net = Holder(name="net")
    net(x)
    old = net.layers[0]
    trained = old.get_parameters()["affine/W"]
    net.layers[0] = nm.Linear(4, 4)
    net(x)  # the new one is adopted: the old one is replaced
    net.layers[0] = old
    assert net(x).shape == (1, 4)
    assert net.get_parameters()["layers/0/affine/W"] is trained
