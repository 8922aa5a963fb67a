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
    assert "output 0: shape" not in text  # both still give (2, 3)


def test_a_different_creation_order_differs_only_in_the_initial_values():
    class Reordered(Small):
        def __init__(self):
            self.fc = nm.Linear(4 * 6 * 6, 3)  # created first: draws the random numbers first
            self.conv0 = nm.Conv2d(3, 4, (3, 3), pad=(1, 1))
            self.bn0 = nm.BatchNorm2d(4)
            self.act = F.relu

    report = compare_networks(small_pf, Reordered(), (2, 3, 6, 6))
    ((section, lines),) = report.problems
    assert section.startswith("initial values differ from the same seed")
    assert {line.split(":")[0] for line in lines} == {"conv0/conv/W", "fc/affine/W"}
    assert_same_network(small_pf, Reordered(), (2, 3, 6, 6), check_init=False)


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
