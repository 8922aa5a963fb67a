"""module.summary(*inputs): the blog example's ResUnit, frozen parts, lazy modules, shared ones."""

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from models import ResUnit, Stack

import nnabla_modules as nm

EXPECTED_RES_UNIT = """\
Module                    Class        Output shape      Params    Mult-adds  Trainable
------------------------  -----------  ----------------  ------  -----------  ---------
res_unit                  ResUnit      (8, 128, 16, 16)  90,688  182,452,224  yes
  res_unit/conv0          Conv2d       (8, 32, 16, 16)    2,080    4,194,304  yes
  res_unit/bn0            BatchNorm2d  (8, 32, 16, 16)      128            0  yes
  res_unit/conv1          Conv2d       (8, 32, 16, 16)    9,248   18,874,368  yes
  res_unit/bn1            BatchNorm2d  (8, 32, 16, 16)      128            0  yes
  res_unit/conv2          Conv2d       (8, 128, 16, 16)   4,224    8,388,608  yes
  res_unit/bn2            BatchNorm2d  (8, 128, 16, 16)     512            0  yes
  res_unit/shortcut_conv  Conv2d       (8, 128, 16, 16)  73,856  150,994,944  yes
  res_unit/shortcut_bn    BatchNorm2d  (8, 128, 16, 16)     512            0  yes

Total params: 90,688
Trainable params: 90,048
Non-trainable params: 640
Total mult-adds: 182,452,224
Parameter memory: 354.25 KiB
Activation memory: 7.50 MiB"""


def test_the_seed_res_unit():
    unit = ResUnit(64, 128)
    summary = unit.summary(nn.Variable((8, 64, 16, 16)))
    assert str(summary) == EXPECTED_RES_UNIT
    assert repr(summary) == EXPECTED_RES_UNIT
    registry = nn.get_parameters(grad_only=False)
    assert summary.total_params == sum(int(np.prod(v.shape)) for v in registry.values())
    assert summary.outputs.shape == (8, 128, 16, 16)


def test_the_res_unit_figures_by_hand():
    summary = ResUnit(64, 128).summary((8, 64, 16, 16))
    rows = {row["name"]: row for row in summary.rows}
    small, large = 8 * 32 * 16 * 16, 8 * 128 * 16 * 16  # elements of the two output sizes
    # a convolution: output elements times (input channels x kernel) products each
    assert rows["conv0"]["mult_adds"] == small * (64 * 1 * 1)
    assert rows["conv1"]["mult_adds"] == small * (32 * 3 * 3)
    assert rows["conv2"]["mult_adds"] == large * (32 * 1 * 1)
    assert rows["shortcut_conv"]["mult_adds"] == large * (64 * 3 * 3)
    assert rows["bn0"]["mult_adds"] == 0
    assert (
        summary.total_mult_adds
        == rows[""]["mult_adds"]
        == sum(rows[name]["mult_adds"] for name in ("conv0", "conv1", "conv2", "shortcut_conv"))
    )
    # float32 parameters: 4 bytes each
    assert summary.param_memory == 4 * 90_688
    assert rows["conv1"]["param_memory"] == 4 * (32 * 32 * 3 * 3 + 32)
    # activations: every function's output, 4 bytes an element. conv, bn and relu
    # in three stages, then shortcut conv and bn, the sum and the last relu
    assert rows["conv0"]["activation_memory"] == 4 * small
    assert rows["bn0"]["activation_memory"] == 4 * small
    assert summary.activation_memory == 4 * (6 * small + 6 * large)


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
    assert rows["net/body"]["calls"] == 2
    assert rows["net/body"]["mult_adds"] == 2 * (2 * 3 * 3)  # both calls count
    assert rows["net/unused"]["mult_adds"] == 0
    assert summary.total_mult_adds == rows["net"]["mult_adds"] == 2 * (2 * 3 * 3)
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


def mult_adds(module, *inputs):
    return module.summary(*inputs).total_mult_adds


def test_mult_adds_of_affine_and_deconvolution_layers():
    assert mult_adds(nm.Linear(5, 3), (4, 5)) == 4 * 3 * 5
    assert mult_adds(nm.Affine((2, 5), (3, 2)), (4, 2, 5)) == (4 * 3 * 2) * (2 * 5)
    # every input element is multiplied by outmaps x kernel weights
    deconv = nm.Deconv2d(4, 6, (3, 3), stride=(2, 2))
    assert mult_adds(deconv, (2, 4, 5, 5)) == (2 * 4 * 5 * 5) * (6 * 3 * 3)
    grouped = nm.Conv2d(4, 6, (3, 3), group=2)
    assert mult_adds(grouped, (1, 4, 5, 5)) == (1 * 6 * 3 * 3) * (2 * 3 * 3)


def test_mult_adds_of_recurrent_layers():
    steps, batch, inputs, hidden = 7, 2, 3, 5
    rnn = nm.RNN(inputs, hidden, num_layers=2)
    per_step = hidden * (inputs + hidden) + hidden * (hidden + hidden)  # two layers
    assert mult_adds(rnn, (steps, batch, inputs), (2, 1, batch, hidden)) == steps * batch * per_step
    lstm = nm.LSTM(inputs, hidden, bidirectional=True)
    per_step = 2 * 4 * hidden * (inputs + hidden)  # two directions, four gates
    state = (1, 2, batch, hidden)
    assert mult_adds(lstm, (steps, batch, inputs), state, state) == steps * batch * per_step
    gru = nm.GRU(inputs, hidden, num_layers=2, bidirectional=True)
    per_step = 2 * 3 * hidden * (inputs + hidden) + 2 * 3 * hidden * (2 * hidden + hidden)
    assert mult_adds(gru, (steps, batch, inputs), (2, 2, batch, hidden)) == steps * batch * per_step


def test_mult_adds_of_attention():
    length, batch, embed, heads = 5, 2, 8, 2
    attention = nm.MultiHeadAttention(embed, num_heads=heads)
    x = (length, batch, embed)
    projections = 4 * length * batch * embed * embed  # query, key, value and output
    scores = (batch * heads) * length * length * (embed // heads)  # q k^T
    weighted = (batch * heads) * length * (embed // heads) * length  # softmax(...) v
    assert mult_adds(attention, x, x, x) == projections + scores + weighted


def test_depth_and_columns_are_options_not_model_arguments():
    net = Stack(name="net")
    summary = net.summary((2, 3, 8, 8), depth=1, columns=["params", "param_memory"])
    assert [row["depth"] for row in summary.rows] == [0] + [1] * 7
    assert str(summary).splitlines()[0].split() == ["Module", "Params", "Param", "memory"]
    assert [row["depth"] for row in net.summary((2, 3, 8, 8), depth=0).rows] == [0]
    assert summary.total_params == net.summary((2, 3, 8, 8)).total_params  # depth hides rows only
    with pytest.raises(ValueError, match=r"unknown columns \['flops'\]"):
        net.summary((2, 3, 8, 8), columns=["flops"])
    with pytest.raises(ValueError, match="depth must be an int >= 0"):
        net.summary((2, 3, 8, 8), depth=-1)


def test_the_model_keyword_arguments_go_through_model_kwargs():
    unit = ResUnit(8, 8)
    for kwargs, batch_stat in (({"test": True}, False), (None, True)):
        functions = []
        unit.summary((2, 8, 4, 4), model_kwargs=kwargs).outputs.visit(functions.append)
        norms = [f for f in functions if f.info.type_name == "BatchNormalization"]
        assert len(norms) == 3 and all(f.info.args["batch_stat"] is batch_stat for f in norms)
    seen = []

    class Records(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(3, 2)

        def __call__(self, x, scale=1.0):
            seen.append(scale)
            return self.fc(x) * scale

    Records().summary((1, 3), model_kwargs={"scale": 2.0}, depth=0)
    assert seen == [2.0]
    with pytest.raises(TypeError, match=r"model_kwargs=\{'scale': 3.0\}"):
        Records(name="rec").summary((1, 3), scale=3.0)
    assert seen == [2.0]  # never called with it


def test_without_inputs_the_parameters_only():
    unit = ResUnit(8, 16, name="unit")
    summary = unit.summary()
    assert unit.get_parameters() and summary.outputs is None
    assert summary.total_mult_adds is None and summary.activation_memory is None
    assert str(summary).splitlines()[0].split() == [
        "Module",
        "Class",
        "Params",
        "Param",
        "memory",
        "Trainable",
    ]
    assert summary.rows[1]["output_shape"] is None
    assert summary.total_params == unit.summary((2, 8, 4, 4)).total_params
    assert "Total mult-adds" not in str(summary)
    with pytest.raises(ValueError, match=r"\['mult_adds'\] need inputs"):
        unit.summary(columns=["mult_adds"])


def test_children_without_a_level_get_rows_of_their_own():
    class Wrapper(nm.Module):
        def __init__(self):
            self.first = nm.Linear(3, 4, name="")
            self.heads = [nm.Linear(4, 2, name="cls")]

        def __call__(self, x):
            return self.heads[0](self.first(x))

    class Outer(nm.Module):
        def __init__(self):
            self.inner = Wrapper(name="")
            self.norm = nm.BatchNorm1d(3, name="")

        def __call__(self, x):
            return self.inner(self.norm(x))

    summary = Outer(name="outer").summary((2, 3, 1))
    rows = {row["name"]: row for row in summary.rows}
    assert list(rows) == ["", "inner", "inner.first", "inner.heads.0", "norm"]
    assert {row["prefix"] for row in summary.rows} == {"outer", "outer/cls"}
    assert rows["inner.first"]["mult_adds"] == 2 * 4 * 3
    assert rows["inner"]["mult_adds"] == 2 * 4 * 3 + 2 * 2 * 4
    assert rows[""]["mult_adds"] == rows["inner"]["mult_adds"]
    assert rows["norm"]["params"] == 4 * 3 and rows["norm"]["activation_memory"] == 4 * 2 * 3
    lines = str(summary).splitlines()
    assert lines[3].strip().startswith("outer [inner]")
    assert lines[4].strip().startswith("outer [first]")


def test_a_negative_dimension_is_a_value_error_not_an_abort():
    with pytest.raises(ValueError, match=r"summary\(Linear 'fc'\): input 0 .*must not be negative"):
        nm.Linear(5, 3, name="fc").summary((-1, 5))
