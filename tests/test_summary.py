"""module.summary(*inputs): the seed's ResUnit, frozen parts, lazy modules, shared ones."""

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
from models import ResUnit, Stack

import nnabla_modules as nm

EXPECTED_RES_UNIT = """\
Module                    Class        Output shape      Params  Trainable
------------------------  -----------  ----------------  ------  ---------
res_unit                  ResUnit      (8, 128, 16, 16)  90,688  yes
  res_unit/conv0          Conv2d       (8, 32, 16, 16)    2,080  yes
  res_unit/bn0            BatchNorm2d  (8, 32, 16, 16)      128  yes
  res_unit/conv1          Conv2d       (8, 32, 16, 16)    9,248  yes
  res_unit/bn1            BatchNorm2d  (8, 32, 16, 16)      128  yes
  res_unit/conv2          Conv2d       (8, 128, 16, 16)   4,224  yes
  res_unit/bn2            BatchNorm2d  (8, 128, 16, 16)     512  yes
  res_unit/shortcut_conv  Conv2d       (8, 128, 16, 16)  73,856  yes
  res_unit/shortcut_bn    BatchNorm2d  (8, 128, 16, 16)     512  yes

Total params: 90,688
Trainable params: 90,048
Non-trainable params: 640"""


def test_the_seed_res_unit():
    unit = ResUnit(64, 128)
    summary = unit.summary(nn.Variable((8, 64, 16, 16)))
    assert str(summary) == EXPECTED_RES_UNIT
    assert repr(summary) == EXPECTED_RES_UNIT
    registry = nn.get_parameters(grad_only=False)
    assert summary.total_params == sum(int(np.prod(v.shape)) for v in registry.values())
    assert summary.outputs.shape == (8, 128, 16, 16)


def test_counts_match_the_registry_per_row():
    unit = ResUnit(8, 16)
    rows = unit.summary((2, 8, 4, 4)).rows
    for row in rows[1:]:
        keys = [k for k in nn.get_parameters(grad_only=False) if k.startswith(row["prefix"] + "/")]
        size = sum(int(np.prod(nn.get_parameters(grad_only=False)[k].shape)) for k in keys)
        assert row["params"] == size, row["prefix"]
    assert [row["depth"] for row in rows] == [0] + [1] * 8


def test_builds_the_graph_without_computing_it():
    unit = ResUnit(8, 8)
    before = {k: v.d.copy() for k, v in unit.get_parameters(grad_only=False).items()}
    unit.summary((2, 8, 4, 4))  # training-mode batch norm would update its running statistics
    after = unit.get_parameters(grad_only=False)
    assert all(np.array_equal(before[k], after[k].d) for k in before)


def test_frozen_parts_are_marked():
    unit = ResUnit(8, 8)
    unit.conv0.freeze()
    rows = {row["prefix"]: row for row in unit.summary((2, 8, 4, 4)).rows}
    assert rows["res_unit/conv0"]["trainable"] == "no"
    assert rows["res_unit/conv1"]["trainable"] == "yes"
    assert rows["res_unit/bn0"]["trainable"] == "yes"  # its running statistics never train
    assert rows["res_unit"]["trainable"] == "partial"
    unit.freeze()
    assert unit.summary((2, 8, 4, 4)).rows[0]["trainable"] == "no"


def test_lazy_modules_shared_modules_and_modules_never_called():
    class Lazy(nm.Module):
        def __call__(self, x):
            return PF.affine(x, 3, name="fc")

    class Net(nm.Module):
        def __init__(self):
            self.body = Lazy()
            self.unused = nm.Linear(3, 3)

        def __call__(self, x):
            return self.body(self.body(x))  # reused: two calls, one row

    summary = Net(name="net").summary((2, 3))
    rows = {row["prefix"]: row for row in summary.rows}
    assert rows["net/body"]["output_shape"] == "(2, 3) [2 calls]"
    assert rows["net/body"]["params"] == 12  # created by the call
    assert rows["net/unused"]["output_shape"] == "(not called)"
    assert rows["net/unused"]["params"] == 12  # eager: it knows its sizes
    assert summary.total_params == 24


def test_containers_tuples_of_outputs_and_the_registry_root():
    summary = Stack(name="").summary((2, 3, 8, 8))
    assert summary.rows[0]["prefix"] == "(registry root)"
    assert summary.rows[0]["output_shape"] == "(2, 10), (2, 4)"
    assert [row["prefix"] for row in summary.rows[1:]] == [
        "stem", "blocks/0", "blocks/1/0", "blocks/1/1", "heads/cls", "heads/box", "late/0",
    ]  # fmt: skip
