"""Parameter-free layers (nm.ReLU, nm.MaxPool2d, nm.Dropout, ...): the F call they stand for."""

import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

import nnabla_modules as nm

X = np.random.RandomState(0).randn(2, 3, 6, 6).astype(np.float32)

# (layer, the F call it stands for)
CASES = [
    (lambda: nm.ReLU(), lambda x: F.relu(x)),
    (lambda: nm.LeakyReLU(), lambda x: F.leaky_relu(x)),
    (lambda: nm.LeakyReLU(0.3), lambda x: F.leaky_relu(x, alpha=0.3)),
    (lambda: nm.Sigmoid(), lambda x: F.sigmoid(x)),
    (lambda: nm.Tanh(), lambda x: F.tanh(x)),
    (lambda: nm.GELU(), lambda x: F.gelu(x)),
    (lambda: nm.Softmax(), lambda x: F.softmax(x)),
    (lambda: nm.Softmax(axis=1), lambda x: F.softmax(x, axis=1)),
    (lambda: nm.Dropout(0.3, seed=7), lambda x: F.dropout(x, p=0.3, seed=7)),
    (lambda: nm.MaxPool2d(2), lambda x: F.max_pooling(x, (2, 2))),
    (
        lambda: nm.MaxPool2d(3, stride=2, pad=1, ignore_border=False),
        lambda x: F.max_pooling(x, (3, 3), stride=(2, 2), pad=(1, 1), ignore_border=False),
    ),
    (lambda: nm.AvgPool2d((2, 3)), lambda x: F.average_pooling(x, (2, 3))),
    (
        lambda: nm.AvgPool2d(3, 1, 1, including_pad=False),
        lambda x: F.average_pooling(x, (3, 3), (1, 1), pad=(1, 1), including_pad=False),
    ),
    (lambda: nm.GlobalAvgPool2d(), lambda x: F.global_average_pooling(x)),
    (lambda: nm.Flatten(), lambda x: F.reshape(x, (2, 108))),
    (lambda: nm.Flatten(2), lambda x: F.reshape(x, (2, 3, 36))),
]


def _forward(y):
    y.forward()
    return y.d.copy()


@pytest.mark.parametrize("make, call", CASES)
def test_each_layer_builds_the_graph_and_values_of_its_f_call(make, call):
    layer = make()
    x = nn.Variable.from_numpy_array(X)
    got, expected = layer(x), call(x)
    assert got.parent.info.type_name == expected.parent.info.type_name
    assert got.parent.info.args == expected.parent.info.args
    np.testing.assert_array_equal(_forward(got), _forward(expected))  # bit for bit
    assert layer.get_parameters(grad_only=False) == {}


def test_identity_returns_its_input():
    x = nn.Variable((2, 3))
    assert nm.Identity()(x) is x and nm.Identity(name="skip").prefix == "skip"


def test_dropout_is_off_in_eval_and_with_test_true():
    drop = nm.Dropout(0.5, seed=3)
    x = nn.Variable.from_numpy_array(np.ones((4, 50), np.float32))
    trained = _forward(drop(x))
    assert set(np.unique(trained)) == {0.0, 2.0}  # zeroed or scaled by 1 / (1 - p)
    assert drop(x, test=True) is x
    assert drop.eval()(x) is x
    assert drop(x, test=False) is x  # test=False forces nothing in eval()
    np.testing.assert_array_equal(_forward(drop.train()(x)), trained)  # same seed, same mask


def test_a_model_in_eval_has_no_dropout_in_its_graph():
    model = nm.Sequential(
        nm.Conv2d(3, 4, 3, pad=1), nm.ReLU(), nm.MaxPool2d(2), nm.Dropout(0.5), nm.Flatten(),
        nm.Linear(36, 5), name="model",
    )  # fmt: skip
    x = nn.Variable((2, 3, 6, 6))

    def functions(y):
        names = []
        y.visit(lambda f: names.append(f.info.type_name))
        return names

    train, infer = functions(model.train()(x)), functions(model.eval()(x))
    assert train == ["Convolution", "ReLU", "MaxPooling", "Dropout", "Reshape", "Affine"]
    assert infer == ["Convolution", "ReLU", "MaxPooling", "Reshape", "Affine"]
    assert list(model.get_parameters()) == ["0/conv/W", "0/conv/b", "5/affine/W", "5/affine/b"]
    assert "\n  (1): ReLU()  # model/1, 0 params\n" in repr(model)
    assert "\n  (2): MaxPool2d(kernel=(2, 2))  # model/2, 0 params\n" in repr(model)
    pool = nm.AvgPool2d(3, 1, name="a")
    assert repr(pool) == "AvgPool2d(kernel=(3, 3), stride=(1, 1))  # a, 0 params"


def test_bad_arguments_name_the_module():
    with pytest.raises(ValueError, match=r"Dropout 'drop'.*p=1.5; expected a number in \[0, 1\)"):
        nm.Dropout(1.5, name="drop")
    with pytest.raises(ValueError, match=r"MaxPool2d 'pool'.*kernel=\(0, 0\)"):
        nm.MaxPool2d(0, name="pool")
    with pytest.raises(TypeError, match=r"AvgPool2d 'avg'.*kernel='2'"):
        nm.AvgPool2d("2", name="avg")
    with pytest.raises(TypeError, match=r"LeakyReLU 'act'.*alpha='x'"):
        nm.LeakyReLU("x", name="act")
    with pytest.raises(ValueError, match=r"Flatten 'flat'.*base_axis=2 needs an input of more"):
        nm.Flatten(2, name="flat")(nn.Variable((4, 3)))
    with pytest.raises(ValueError, match=r"MaxPool2d 'small'"):  # NNabla's own error, named
        nm.MaxPool2d(2, name="small")(nn.Variable((4,)))
