"""Sequential, ModuleList, ModuleDict: the explicit forms of lists and dicts of modules."""

from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from equivalence import assert_equivalent, run

import nnabla_modules as nm


def test_sequential_equals_the_pf_code_it_replaces():
    class Net(nm.Module):
        def __init__(self):
            self.body = nm.Sequential(nm.Conv2d(3, 4, 3, pad=1), nm.BatchNorm2d(4), F.relu)
            self.head = nm.Linear(4 * 5 * 5, 2)

        def __call__(self, x):
            return self.head(self.body(x))

    def pf_code(x):
        with nn.parameter_scope("net"):
            with nn.parameter_scope("body"):
                h = F.relu(
                    PF.batch_normalization(
                        PF.convolution(x, 4, (3, 3), pad=(1, 1), name="0"), name="1"
                    )
                )
            return PF.affine(h, 2, name="head")

    assert_equivalent(
        run(pf_code, [(2, 3, 5, 5)]), run(lambda x: Net(name="net")(x), [(2, 3, 5, 5)])
    )


def test_sequential_names_items_by_index_directly_under_its_prefix():
    seq = nm.Sequential(nm.Linear(3, 4), F.relu, nm.Linear(4, 2), name="seq")
    assert [name for name, _ in seq.named_children()] == ["0", "2"]
    assert seq[2].prefix == "seq/2"
    assert seq[1] is F.relu
    assert len(seq) == 3
    assert list(seq.get_parameters()) == ["0/affine/W", "0/affine/b", "2/affine/W", "2/affine/b"]


@pytest.mark.parametrize("form", ["kwargs", "OrderedDict"])
def test_sequential_names_items_by_key(form):
    items = OrderedDict([("fc", nm.Linear(3, 4)), ("act", F.tanh), ("out", nm.Linear(4, 1))])
    seq = (
        nm.Sequential(**items, name="seq") if form == "kwargs" else nm.Sequential(items, name="seq")
    )
    assert [name for name, _ in seq.named_children()] == ["fc", "out"]
    assert seq["out"].prefix == "seq/out"
    assert seq(nn.Variable((2, 3))).shape == (2, 1)


def test_sequential_append_slices_and_nesting():
    seq = nm.Sequential(nm.Linear(3, 3), name="seq")
    seq.append(nm.Sequential(nm.Linear(3, 3), F.relu))
    assert seq[1][0].prefix == "seq/1/0"
    head = seq[:1]
    assert head[0] is seq[0] and head[0].prefix == "seq/0"  # shared, not moved
    assert seq(nn.Variable((2, 3))).shape == (2, 3)


def test_sequential_in_eval_mode_infers():
    seq = nm.Sequential(nm.BatchNorm1d(3), name="seq").eval()
    y = seq(nn.Variable((4, 3, 2)))
    assert y.parent.info.args["batch_stat"] is False


def test_module_list_is_a_list_held_by_its_parent():
    class Stack(nm.Module):
        def __init__(self):
            self.blocks = nm.ModuleList([nm.Linear(2, 2)])
            self.blocks.append(nm.Linear(2, 2))
            self.blocks.extend([nm.Linear(2, 2)])

        def __call__(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    class PlainList(Stack):
        def __init__(self):
            self.blocks = [nm.Linear(2, 2) for _ in range(3)]

    listed = Stack(name="stack")
    assert [b.prefix for b in listed.blocks] == [
        "stack/blocks/0",
        "stack/blocks/1",
        "stack/blocks/2",
    ]
    assert listed.blocks[-1] is listed.blocks[2]
    assert len(listed.blocks[1:]) == 2
    nn.clear_parameters()
    plain = list(PlainList(name="stack").get_parameters())
    nn.clear_parameters()
    assert list(Stack(name="stack").get_parameters()) == plain


def test_module_list_replaces_items_and_holds_only_modules():
    blocks = nm.ModuleList([nm.Linear(2, 2), nm.Linear(2, 2)], name="blocks")
    new = nm.Linear(2, 3)
    blocks[1] = new
    assert blocks[1] is new and new.prefix == "blocks/1"
    with pytest.raises(TypeError, match="ModuleList 'blocks': holds modules"):
        blocks.append(F.relu)
    with pytest.raises(IndexError):
        blocks[5]


def test_module_dict_names_items_by_key():
    heads = nm.ModuleDict({"cls": nm.Linear(4, 3)}, box=nm.Linear(4, 2), name="heads")
    heads["mask"] = nm.Linear(4, 1)
    assert list(heads) == ["cls", "box", "mask"] == heads.keys()
    assert "box" in heads and "other" not in heads
    assert [m.prefix for m in heads.values()] == ["heads/cls", "heads/box", "heads/mask"]
    assert list(heads.get_parameters())[:2] == ["cls/affine/W", "cls/affine/b"]
    with pytest.raises(KeyError, match="no item 'other'"):
        heads["other"]


@pytest.mark.parametrize("key", ["keys", "training", "_keys", "name"])
def test_keys_that_would_shadow_attributes_are_refused(key):
    with pytest.raises(KeyError, match="give the item another key"):
        nm.ModuleDict({key: nm.Linear(2, 2)}, name="d")


def test_container_keys_with_a_slash_are_refused():
    with pytest.raises(ValueError, match="contains '/'"):
        nm.ModuleDict({"a/b": nm.Linear(2, 2)})


def test_containers_can_be_saved_and_loaded(tmp_path):
    seq = nm.Sequential(nm.Linear(3, 2), F.relu, nm.Linear(2, 1), name="seq")
    seq.save_parameters(str(tmp_path / "seq.h5"))
    other = nm.Sequential(nm.Linear(3, 2), F.relu, nm.Linear(2, 1), name="other")
    other.load_parameters(str(tmp_path / "seq.h5"))
    for a, b in zip(seq.parameters(), other.parameters()):
        assert np.array_equal(a.d, b.d)


def test_a_cls_key_is_an_item_not_the_metaclass_argument():
    heads = nm.ModuleDict(cls=nm.Linear(4, 3), name="heads")
    assert heads["cls"].prefix == "heads/cls"


def test_printing_a_sequential_lists_its_steps_in_call_order():
    conv = nm.Conv2d(3, 3, 3, pad=1)
    seq = nm.Sequential(conv, F.relu, nm.Conv2d(3, 4, 3, pad=1), F.relu, conv, name="seq")
    lines = repr(seq).splitlines()
    assert lines[0] == "Sequential(  # seq, 196 params"
    assert [line.split(":")[0] for line in lines[1:-1]] == [f"  ({i})" for i in range(5)]
    assert lines[2] == "  (1): relu" and lines[4] == "  (3): relu"
    assert lines[1].startswith("  (0): Conv2d(3, 3, (3, 3)") and "# seq/0, 84 params" in lines[1]
    assert lines[3].startswith("  (2): Conv2d(3, 4, (3, 3)") and "# seq/2" in lines[3]
    assert lines[5] == "  (4): the module of (0)"  # one instance twice: one set of weights
    only_functions = repr(nm.Sequential(F.relu, F.sigmoid, name="act")).splitlines()
    assert only_functions[1:] == ["  (0): relu", "  (1): sigmoid", ")"]
