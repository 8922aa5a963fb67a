"""testing.assert_same_network: a passing refactor and failing ones, read as a user would."""

import functools

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.random
import numpy as np
import pytest
from models import ResUnit, res_unit_pf

import nnabla_modules as nm
from nnabla_modules.testing import assert_same_network, compare_networks

SHAPE = (2, 8, 5, 5)


def small_pf(x, test=False):
    """The old code of the small network the failing refactors get wrong."""
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv0")
    h = F.relu(PF.batch_normalization(h, batch_stat=not test, name="bn0"))
    return PF.affine(h, 3, name="fc")


class Small(nm.Module):
    """The correct refactor of ``small_pf``; subclasses get one thing wrong."""

    def __init__(self, with_bias=True, decay_rate=0.9, kernel=(3, 3)):
        self.conv0 = nm.Conv2d(3, 4, kernel, pad=(1, 1), with_bias=with_bias)
        self.bn0 = nm.BatchNorm2d(4, decay_rate=decay_rate)
        self.fc = nm.Linear(4 * 6 * 6 if kernel == (3, 3) else 4 * 8 * 8, 3)
        self.act = F.relu

    def __call__(self, x, test=False):
        return self.fc(self.act(self.bn0(self.conv0(x), test)))


def test_the_seed_res_unit_is_its_pf_code():
    unit = ResUnit(8, 16)
    assert_same_network(functools.partial(res_unit_pf, inmaps=8, outmaps=16), unit, SHAPE)


def test_a_drop_in_module_and_numpy_inputs():
    x = np.random.RandomState(0).randn(*SHAPE).astype(np.float32)
    assert_same_network(lambda x, test=False: res_unit_pf(x, 8, 8, test), ResUnit(8, 8, name=""), x)


def test_a_passing_report_counts_the_parameters():
    report = compare_networks(small_pf, Small(), (2, 3, 6, 6))
    assert report.same
    assert report.pf_keys == report.module_keys
    assert "the same network (8 parameter arrays)" in str(report)


def test_a_missing_bias_names_the_key():
    with pytest.raises(AssertionError) as error:
        assert_same_network(small_pf, Small(with_bias=False), (2, 3, 6, 6))
    message = str(error.value)
    assert "keys only in the PF code:\n    conv0/conv/b (4,)" in message
    assert "keys only in the module" not in message


def test_a_wrong_activation_changes_the_outputs_in_both_modes():
    module = Small()
    module.act = F.sigmoid
    report = compare_networks(small_pf, module, (2, 3, 6, 6))
    sections = [section for section, _ in report.problems]
    assert "outputs in train mode (PF vs module)" in sections
    assert "outputs in eval mode (PF vs module)" in sections
    assert "parameter gradients after a backward pass" in sections
    assert "max |diff|" in str(report)


def test_a_wrong_decay_rate_shows_in_the_running_statistics():
    report = compare_networks(small_pf, Small(decay_rate=0.5), (2, 3, 6, 6))
    ((section, lines),) = report.problems
    assert section.startswith("parameters after a training forward pass")
    assert [line.split(":")[0] for line in lines] == ["bn0/bn/mean", "bn0/bn/var"]


def test_a_wrong_kernel_is_a_shape_mismatch():
    report = compare_networks(small_pf, Small(kernel=(1, 1)), (2, 3, 6, 6))
    text = str(report)
    assert "conv0/conv/W: (4, 3, 3, 3) vs (4, 3, 1, 1)" in text
    assert "fc/affine/W: (144, 3) vs (256, 3)" in text
    assert "output: shape" not in text  # both still give (2, 3)


class Reordered(Small):
    """Attribute order fc, conv0, bn0; call order conv0, bn0, fc, as in ``small_pf``."""

    def __init__(self):
        self.fc = nm.Linear(4 * 6 * 6, 3)
        self.conv0 = nm.Conv2d(3, 4, (3, 3), pad=(1, 1))
        self.bn0 = nm.BatchNorm2d(4)
        self.act = F.relu


def test_attribute_order_that_differs_from_the_call_order_passes():
    assert_same_network(small_pf, Reordered(name="reordered"), (2, 3, 6, 6), rtol=0, atol=0)
    # a plain build from the same seed gives PF's values: the verdict a user gets by hand
    x = nn.Variable((2, 3, 6, 6))
    nn.seed(313)
    with nn.parameter_scope("old"):
        small_pf(x)
    nn.seed(313)
    module = Reordered(name="plain")
    module(x)
    with nn.parameter_scope("old"):
        old = nn.get_parameters(grad_only=False)
    new = module.get_parameters(grad_only=False)
    assert sorted(new) == sorted(old)  # listed in the tree's order: its attributes'
    assert all(np.array_equal(old[k].d, new[k].d) for k in old)


class Branches(nm.Module):
    def __init__(self, a_first=True):
        self.a = nm.Linear(5, 4)
        self.b = nm.Linear(5, 4)
        self.a_first = a_first

    def __call__(self, x):
        if self.a_first:
            a = self.a(x)
            return a + self.b(x)
        b = self.b(x)  # b's weights drawn first: a different creation order
        return self.a(x) + b


def branches_pf(x):
    return PF.affine(x, 4, name="a") + PF.affine(x, 4, name="b")


def test_a_different_creation_order_differs_only_in_the_initial_values():
    assert_same_network(branches_pf, Branches(), (2, 5))
    report = compare_networks(branches_pf, Branches(a_first=False), (2, 5))
    ((section, lines),) = report.problems
    assert section.startswith("initial values differ from the same seed")
    assert [line.split(":")[0] for line in lines] == ["a/affine/W", "b/affine/W"]  # biases: 0
    assert_same_network(branches_pf, Branches(a_first=False), (2, 5), check_init=False)


def test_another_initializer_is_an_initial_value_difference():
    module = Small()
    module.conv0 = nm.Conv2d(
        3, 4, (3, 3), pad=(1, 1), w_init=nn.initializer.UniformInitializer((-1, 1))
    )
    report = compare_networks(small_pf, module, (2, 3, 6, 6))
    ((section, lines),) = report.problems
    assert section.startswith("initial values differ")
    # its own values differ; it draws as many numbers as PF's uniform default, so
    # the next layer draws the same values as PF's
    assert [line.split(":")[0] for line in lines] == ["conv0/conv/W"]
    assert " vs module " in lines[0]


def loss_pf(x, test=False):
    """A scalar loss with random functions: dropout, and noise added in training."""
    h = F.relu(PF.affine(x, 16, name="fc1"))
    if not test:
        h = F.dropout(h, 0.5) + 0.1 * F.randn(shape=h.shape)
    return F.mean(PF.affine(h, 1, name="fc2") ** 2)


class Loss(nm.Module):
    def __init__(self, p=0.5):
        self.fc1 = nm.Linear(6, 16)
        self.fc2 = nm.Linear(16, 1)
        self.p = p

    def __call__(self, x, test=False):
        h = F.relu(self.fc1(x))
        if self.training:
            h = F.dropout(h, self.p) + 0.1 * F.randn(shape=h.shape)
        return F.mean(self.fc2(h) ** 2)


def test_a_scalar_loss_with_random_functions_is_the_same_network():
    report = compare_networks(loss_pf, Loss(name="loss"), (8, 6), rtol=0, atol=0)
    assert report.same, str(report)
    assert report.first_difference is None


def test_a_different_dropout_rate_is_caught_with_both_values():
    report = compare_networks(loss_pf, Loss(p=0.25, name="loss"), (8, 6))
    sections = dict(report.problems)
    (line,) = sections["outputs in train mode (PF vs module)"]
    assert line.startswith("output: max |diff| ")
    _, values = line.split(": PF ")
    pf_value, module_value = (float(v) for v in values.split(" vs module "))
    assert pf_value != module_value and pf_value > 0 and module_value > 0
    assert "parameter gradients after a backward pass" in sections
    assert "outputs in eval mode (PF vs module)" not in sections  # no dropout when inferring
    assert report.first_difference == "outputs in train mode (PF vs module): " + line


def imagenet_style_pf(x, test=False):
    """nnabla-examples' ImageNet and PointNet models return ``(output, dict of hidden)``."""
    h = F.relu(PF.convolution(x, 4, (3, 3), name="conv"))
    pred = PF.affine(h, 3, name="fc")
    return pred, {"features": h, "scale": 0.5, "logits": [pred, F.softmax(pred)]}


class ImageNetStyle(nm.Module):
    def __init__(self, scale=0.5, act=F.relu, extra=False):
        self.conv = nm.Conv2d(2, 4, (3, 3))
        self.fc = nm.Linear(4 * 3 * 3, 3)
        self.scale, self.act, self.extra = scale, act, extra

    def __call__(self, x, test=False):
        h = self.act(self.conv(x))
        pred = self.fc(h)
        hidden = {"features": h, "scale": self.scale, "logits": [pred, F.softmax(pred)]}
        if self.extra:
            hidden["extra"] = h
        return pred, hidden


def test_an_output_with_a_dict_of_hidden_variables():
    assert_same_network(
        imagenet_style_pf, ImageNetStyle(name="imagenet"), (2, 2, 5, 5), rtol=0, atol=0
    )


def test_differences_inside_nested_outputs_name_the_path():
    report = compare_networks(
        imagenet_style_pf, ImageNetStyle(scale=0.25, extra=True), (2, 2, 5, 5)
    )
    lines = dict(report.problems)["outputs in train mode (PF vs module)"]
    assert lines == [
        "output[1]['extra']: only in the module's output",
        "output[1]['scale']: max |diff| 0.25: PF 0.5 vs module 0.25",
    ]
    report = compare_networks(imagenet_style_pf, ImageNetStyle(act=F.sigmoid), (2, 2, 5, 5))
    paths = [
        line.split(":")[0] for line in dict(report.problems)["outputs in eval mode (PF vs module)"]
    ]
    assert paths == [
        "output[0]",
        "output[1]['features']",
        "output[1]['logits'][0]",
        "output[1]['logits'][1]",
    ]


def test_outputs_of_another_kind_are_reported():
    def old(x):
        return PF.affine(x, 2, name="fc"), "logits"

    class New(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(3, 2)

        def __call__(self, x):
            return self.fc(x), None

    report = compare_networks(old, New(), (2, 3), modes=("train",))
    assert dict(report.problems) == {
        "outputs in train mode (PF vs module)": ["output[1]: PF 'logits' vs module None"]
    }


def test_the_module_rng_and_modes_are_left_as_they_were():
    module = Small(name="small").eval()
    before = {k: v.d.copy() for k, v in module.get_parameters(grad_only=False).items()}
    rng = nnabla.random.prng
    compare_networks(small_pf, module, (2, 3, 6, 6))
    assert nnabla.random.prng is rng
    assert not any(m.training for m in module.modules())
    after = module.get_parameters(grad_only=False)
    assert all(np.array_equal(before[k], after[k].d) for k in before)
    assert all(k.startswith("small/") for k in nn.get_parameters(grad_only=False))  # PF's: private


def test_pf_code_without_a_mode_flag_gets_explicit_eval_kwargs():
    def old(x, inference=False):
        return PF.batch_normalization(x, batch_stat=not inference)

    module = nm.BatchNorm2d(3, name="")
    assert_same_network(old, module, (2, 3, 4, 4), pf_eval_kwargs={"inference": True})
    report = compare_networks(old, module, (2, 3, 4, 4))  # eval PF code still trains
    assert [s for s, _ in report.problems] == ["outputs in eval mode (PF vs module)"]


def test_dict_outputs_in_another_key_order_still_compare_gradients():
    def old(x):
        h = PF.affine(x, 4, name="fc")
        return {"features": h, "score": F.sum(h)}

    class New(nm.Module):
        def __init__(self, scale=1.0):
            self.fc = nm.Linear(3, 4)
            self.scale = scale

        def __call__(self, x):
            h = self.fc(x)
            return {"score": F.sum(h) * self.scale, "features": h}

    assert_same_network(old, New(), (2, 3), rtol=0, atol=0)
    report = compare_networks(old, New(scale=2.0), (2, 3), modes=("train",))
    sections = dict(report.problems)
    assert [line.split(":")[0] for line in sections["outputs in train mode (PF vs module)"]] == [
        "output['score']"
    ]
    assert "parameter gradients after a backward pass" in sections
