"""The naming rules of docs/concepts.md, one table row per rule, and their errors."""

import gc

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest
from conftest import registry_keys
from models import ResUnit, Stack

import nnabla_modules as nm
from nnabla_modules.core._naming import snake_case


class Holder(nm.Module):
    """Holds whatever it is given under ``self.<attr>`` and calls every module in it."""

    def __init__(self, **attrs):
        for attr, value in attrs.items():
            setattr(self, attr, value)

    def __call__(self, x):
        for module in self.modules():
            if isinstance(module, nm.Layer):
                module(x)
        return x


def fc(**kw):
    return nm.Affine(2, 3, **kw)


# rule -> (build the model, the registry keys after one call)
RULES = {
    "given name": (lambda: fc(name="head"), ["head/affine/W", "head/affine/b"]),
    "class name in snake_case": (lambda: fc(), ["affine/affine/W", "affine/affine/b"]),
    "attribute name": (lambda: Holder(fc1=fc(), name="m"), ["m/fc1/affine/W", "m/fc1/affine/b"]),
    "given name beats the attribute": (lambda: Holder(fc1=fc(name="x"), name="m"),
                                       ["m/x/affine/W", "m/x/affine/b"]),
    "list items": (lambda: Holder(blocks=[fc(), fc()], name="m"),
                   ["m/blocks/0/affine/W", "m/blocks/0/affine/b",
                    "m/blocks/1/affine/W", "m/blocks/1/affine/b"]),
    "tuple items": (lambda: Holder(pair=(fc(),), name="m"), ["m/pair/0/affine/W",
                                                             "m/pair/0/affine/b"]),
    "nested lists": (lambda: Holder(blocks=[[fc()]], name="m"),
                     ["m/blocks/0/0/affine/W", "m/blocks/0/0/affine/b"]),
    "dict keys": (lambda: Holder(heads={"cls": fc()}, name="m"),
                  ["m/heads/cls/affine/W", "m/heads/cls/affine/b"]),
    "name='' on a root": (lambda: Holder(fc1=fc(), name=""), ["fc1/affine/W", "fc1/affine/b"]),
    "name='' on a child": (lambda: Holder(a=fc(name=""), b=fc(), name="m"),
                           ["m/affine/W", "m/affine/b", "m/b/affine/W", "m/b/affine/b"]),
    "root in the construction scope": (lambda: _constructed_in("outer", lambda: fc(name="f")),
                                       ["outer/f/affine/W", "outer/f/affine/b"]),
    "'' root in the construction scope": (lambda: _constructed_in("outer", lambda: fc(name="")),
                                          ["outer/affine/W", "outer/affine/b"]),
}


def _constructed_in(scope, build):
    with nn.parameter_scope(scope):
        return build()


@pytest.mark.parametrize("rule", list(RULES))
def test_naming_rule(rule):
    build, expected = RULES[rule]
    model = build()
    model(nn.Variable((4, 2)))
    assert registry_keys() == expected
    assert [model.prefix + "/" + k if model.prefix else k
            for k in model.get_parameters(grad_only=False)] == expected


@pytest.mark.parametrize("class_name, expected", [
    ("ResUnit", "res_unit"), ("Conv2d", "conv2d"), ("BatchNorm2d", "batch_norm2d"),
    ("LSTMCell", "lstm_cell"), ("MLP", "mlp"), ("HTTPServer2", "http_server2"),
    ("PReLU", "p_re_lu"), ("A", "a"), ("already_snake", "already_snake"),
])
def test_snake_case(class_name, expected):
    assert snake_case(class_name) == expected


def test_list_filled_after_assignment_is_found():
    class Late(nm.Module):
        def __init__(self):
            self.blocks = []
            for _ in range(2):
                self.blocks.append(fc())

        def __call__(self, x):
            return [b(x) for b in self.blocks]

    Late(name="late")(nn.Variable((1, 2)))
    assert registry_keys() == ["late/blocks/0/affine/W", "late/blocks/0/affine/b",
                               "late/blocks/1/affine/W", "late/blocks/1/affine/b"]


def test_list_filled_after_the_first_call_is_found():
    class Growing(nm.Module):
        def __init__(self):
            self.blocks = [fc()]

        def __call__(self, x):
            return [b(x) for b in self.blocks]

    model = Growing(name="g")
    model(nn.Variable((1, 2)))
    model.blocks.append(fc())
    model(nn.Variable((1, 2)))
    assert registry_keys() == ["g/blocks/0/affine/W", "g/blocks/0/affine/b",
                               "g/blocks/1/affine/W", "g/blocks/1/affine/b"]


def test_auto_named_roots_are_unique_among_live_modules():
    first, second, third = ResUnit(), ResUnit(), ResUnit()
    assert [first.prefix, second.prefix, third.prefix] == ["res_unit", "res_unit_1",
                                                            "res_unit_2"]
    del second
    gc.collect()
    assert ResUnit().prefix == "res_unit_1"  # a dead module's name is free again


def test_auto_names_are_freed_without_the_garbage_collector():
    gc.disable()
    try:
        for _ in range(3):
            model = ResUnit()
            assert model.prefix == "res_unit"
            del model
    finally:
        gc.enable()


def test_children_do_not_take_automatic_root_names():
    ResUnit()
    assert nm.Conv2d(1, 1, (1, 1)).prefix == "conv2d"


def test_given_names_are_used_as_given_and_share_parameters():
    a, b = fc(name="same"), fc(name="same")
    x = nn.Variable((1, 2))
    a(x), b(x)
    assert registry_keys() == ["same/affine/W", "same/affine/b"]
    for key, param in a.get_parameters().items():
        assert b.get_parameters()[key] is param


def test_same_instance_twice_is_one_set_of_weights():
    model = Stack(name="s")
    outputs = model(nn.Variable((2, 3, 8, 8)))
    assert len(outputs) == 2
    names = [name for name, _ in model.named_children()]
    assert names == ["stem", "blocks/0", "blocks/1/0", "blocks/1/1", "heads/cls", "heads/box",
                     "late/0"]
    assert model.again is model.stem and model.again.prefix == "s/stem"


def test_name_is_accepted_whether_or_not_init_declares_it():
    class NoName(nm.Module):
        def __init__(self, width):
            self.fc = nm.Affine(width, 1)

    class TakesName(nm.Module):
        def __init__(self, width, name=None):
            self.received = name
            self.fc = nm.Affine(width, 1)

    assert NoName(2, name="a").prefix == "a"
    taker = TakesName(2, name="b")
    assert taker.prefix == "b" and taker.received == "b"
    positional = TakesName(2, "c")
    assert positional.prefix == "c" and positional.received == "c"


def test_self_name_assignment_in_init_names_the_module():
    class SelfNamed(nm.Module):
        def __init__(self):
            self.name = "chosen"

    assert SelfNamed().prefix == "chosen"


def test_calling_inside_a_user_scope_does_not_move_weights():
    model = ResUnit(8, 8, name="unit")
    x = nn.Variable((2, 8, 4, 4))
    with nn.parameter_scope("elsewhere"):
        model(x)
        with nn.parameter_scope("deeper"):
            model(x)
    assert all(k.startswith("unit/") for k in registry_keys())
    assert nn.parameter.get_current_parameter_scope() is nn.parameter.root_scope


def test_leading_slash_scope_is_not_absolute_but_modules_are():
    with nn.parameter_scope("a"):
        with nn.parameter_scope("/b"):  # NNabla: relative, gives a/b
            PF.affine(nn.Variable((1, 2)), 1)
        fc(name="m")(nn.Variable((1, 2)))
        model = Holder(f=fc(), name="root")
    model(nn.Variable((1, 2)))
    assert registry_keys() == ["a/b/affine/W", "a/b/affine/b", "a/m/affine/W", "a/m/affine/b",
                               "a/root/f/affine/W", "a/root/f/affine/b"]


def test_module_constructed_inside_a_call_is_named_under_the_caller():
    class Outer(nm.Module):
        def __call__(self, x):
            self.inner = fc()  # held before its call: a child
            return self.inner(x)

    Outer(name="o")(nn.Variable((1, 2)))
    assert registry_keys() == ["o/inner/affine/W", "o/inner/affine/b"]


def test_back_references_do_not_make_cycles():
    class Child(nm.Module):
        def __init__(self, owner):
            self.owner = owner
            self.fc = fc()

        def __call__(self, x):
            return self.fc(x)

    class Parent(nm.Module):
        def __init__(self):
            self.child = Child(self)

        def __call__(self, x):
            return self.child(x)

    Parent(name="p")(nn.Variable((1, 2)))
    assert registry_keys() == ["p/child/fc/affine/W", "p/child/fc/affine/b"]


# --- errors -------------------------------------------------------------------------


def test_slash_in_a_given_name_is_an_error():
    with pytest.raises(ValueError, match=r"Affine\(name='a/b'\).*contains '/'"):
        fc(name="a/b")


def test_slash_in_a_dict_key_is_an_error():
    with pytest.raises(ValueError, match="contains '/'"):
        Holder(heads={"a/b": fc()}, name="h")


def test_non_string_name_is_an_error():
    with pytest.raises(TypeError, match="must be a str"):
        fc(name=3)


def test_renaming_before_parameters_exist_is_allowed():
    layer = fc(name="before")
    layer.name = "after"
    assert layer.prefix == "after"
    layer(nn.Variable((1, 2)))
    assert registry_keys() == ["after/affine/W", "after/affine/b"]


def test_renaming_after_parameters_exist_is_an_error():
    layer = fc(name="before")
    layer(nn.Variable((1, 2)))
    with pytest.raises(RuntimeError, match=r"Affine 'before' already has parameters.*renaming"):
        layer.name = "after"
    with pytest.raises(ValueError, match="contains '/'"):
        layer.name = "a/b"
    assert layer.prefix == "before"


def test_reparenting_after_parameters_exist_is_an_error():
    layer = fc(name="free")
    layer.get_parameters()
    with pytest.raises(RuntimeError, match="Affine 'free' already has parameters.*'fc1'"):
        Holder(fc1=layer, name="h")
    assert layer.prefix == "free"
    assert registry_keys() == ["free/affine/W", "free/affine/b"]


def test_reparenting_before_parameters_exist_is_allowed():
    layer = fc()
    assert layer.prefix == "affine"
    holder = Holder(fc1=layer, name="h")
    assert layer.prefix == "h/fc1"
    assert fc().prefix == "affine"  # the root name was given back
    del holder


def test_a_parameter_where_a_scope_is_needed_is_an_error():
    with nn.parameter_scope("m"):
        PF.affine(nn.Variable((1, 2)), 1, name="fc1")
    nn.parameter.set_parameter("m/clash", nn.Variable((1,)))
    expected = "Affine 'm/clash': the registry holds a parameter named 'clash'"
    with pytest.raises(ValueError, match=expected):
        Holder(clash=fc(), name="m")(nn.Variable((1, 2)))


def test_module_without_call_says_what_to_do():
    class Empty(nm.Module):
        pass

    with pytest.raises(NotImplementedError, match="Empty 'empty': define __call__"):
        Empty()(nn.Variable((1,)))


def test_forward_is_an_alternative_to_call():
    class Forward(nm.Module):
        def __init__(self):
            self.fc = fc()

        def forward(self, x):
            return F.relu(self.fc(x))

    Forward(name="fw")(nn.Variable((1, 2)))
    assert registry_keys() == ["fw/fc/affine/W", "fw/fc/affine/b"]
