"""Wrapping an unchanged PF-based function as a module: wrap() and FunctionModule."""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from equivalence import assert_equivalent, run

import nnabla_modules as nm


def res_block(x, maps, test=False):
    """A PF-based function, exactly as it was written before modules."""
    h = PF.convolution(x, maps, (3, 3), pad=(1, 1), with_bias=False, name="conv1")
    h = F.relu(PF.batch_normalization(h, batch_stat=not test, name="bn1"))
    h = PF.convolution(h, maps, (3, 3), pad=(1, 1), with_bias=False, name="conv2")
    return F.relu(x + PF.batch_normalization(h, batch_stat=not test, name="bn2"))


ResBlock = nm.wrap(res_block)


def test_wrapped_function_equals_the_function_in_a_scope():
    def pf_code(x):
        with nn.parameter_scope("block"):
            return res_block(x, 4)

    assert_equivalent(
        run(pf_code, [(2, 4, 5, 5)]), run(lambda x: ResBlock(name="block")(x, 4), [(2, 4, 5, 5)])
    )


def test_drop_in_wrapped_function_gives_the_functions_own_keys():
    assert_equivalent(
        run(lambda x: res_block(x, 4), [(2, 4, 5, 5)]),
        run(lambda x: ResBlock(name="")(x, 4), [(2, 4, 5, 5)]),
    )


def test_each_instance_owns_its_prefix_and_weights():
    first, second = ResBlock(), ResBlock()
    assert (first.prefix, second.prefix) == ("res_block", "res_block_1")
    x = nn.Variable((1, 4, 3, 3))
    first(x, 4)
    second(x, 4)
    assert (
        list(first.get_parameters())
        == list(second.get_parameters())
        == [
            "conv1/conv/W",
            "bn1/bn/beta",
            "bn1/bn/gamma",
            "conv2/conv/W",
            "bn2/bn/beta",
            "bn2/bn/gamma",
        ]
    )
    assert first.get_parameters()["conv1/conv/W"] is not second.get_parameters()["conv1/conv/W"]


def test_bound_keywords_and_attribute_names():
    class Net(nm.Module):
        def __init__(self):
            self.stem = nm.Conv2d(3, 4, 3, pad=1)
            self.blocks = [ResBlock(maps=4) for _ in range(2)]

        def __call__(self, x, test=False):
            h = self.stem(x)
            for block in self.blocks:
                h = block(h, test=test)
            return h

    net = Net(name="net")
    assert net(nn.Variable((2, 3, 5, 5))).shape == (2, 4, 5, 5)
    assert net.blocks[1].prefix == "net/blocks/1"
    assert "blocks/1/bn2/bn/mean" in net.get_parameters(grad_only=False)


def test_function_module_and_decorator_forms():
    @nm.wrap
    def head(x, n_out=3):
        """Scores."""
        return PF.affine(x, n_out, name="fc")

    assert head.__name__ == "head" and head.__doc__ == "Scores."
    assert head.function(nn.Variable((1, 2))).shape == (1, 3)  # the unchanged function
    nn.clear_parameters()
    module = head(n_out=5)
    assert isinstance(module, nm.FunctionModule) and module.prefix == "head"
    assert module(nn.Variable((1, 2))).shape == (1, 5)
    assert module(nn.Variable((1, 2)), n_out=5).shape == (1, 5)
    plain = nm.FunctionModule(head.function, name="plain")
    assert plain(nn.Variable((1, 2))).shape == (1, 3)
    assert "head" in repr(module) and "n_out=5" in repr(module)
    with pytest.raises(TypeError, match="callable"):
        nm.FunctionModule(3)


def test_eval_is_up_to_the_function():
    """The module's mode is the module's; a PF function takes its own test flags."""
    block = ResBlock(name="b")
    y = block(nn.Variable((2, 4, 3, 3)), 4, test=True)
    assert y.parent.inputs[0].parent.inputs[1].parent.info.args["batch_stat"] is False


def test_parameters_exist_after_the_first_call_and_are_frozen_and_saved(tmp_path):
    block = ResBlock(name="b")
    assert block.get_parameters() == {}  # sizes are known at the first call
    x = nn.Variable.from_numpy_array(np.ones((1, 4, 3, 3), dtype=np.float32))
    block(x, 4)
    assert len(block.get_parameters()) == 6
    block.freeze()
    assert block.get_parameters() == {}
    block.unfreeze()
    path = str(tmp_path / "block.h5")
    block.save_parameters(path)
    other = ResBlock(name="other")
    other.load_parameters(path)  # before its first call: picked up by that call
    other(x, 4)
    for key, param in block.get_parameters(grad_only=False).items():
        assert np.array_equal(other.get_parameters(grad_only=False)[key].d, param.d)
