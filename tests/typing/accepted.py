"""Code a type checker must accept: the ways the layer classes are constructed and called.

tests/test_stubs.py runs mypy over it (no error allowed) and runs it, so
everything here also works.
"""

from typing import Optional

import nnabla as nn
import nnabla.functions as F
import nnabla.initializer as I
import nnabla.parametric_functions as PF
import numpy as np

import nnabla_modules as nm

x = nn.Variable((2, 3, 8, 8))
channels = np.int64(x.shape[1])  # sizes read from shapes may be numpy ints

conv = nm.Conv2d(3, 16, 3, pad=1, name="conv")  # sizes positionally
lazy = nm.Conv2d(None, 16, (3, 3))  # the input size read at the first call
by_keyword = nm.Conv2d(outmaps=16, kernel=(3, 3), stride=(1, 1), with_bias=False)
from_shape = nm.Convolution(channels, 8, (3, 3), w_init=I.NormalInitializer(0.1))
any_axes = nm.Convolution(3, 8, [3, 3], pad=(1, 1))  # N-D classes: a tuple (or list) per axis
bn = nm.BatchNorm2d(16, decay_rate=0.99, eps=1e-4)
fc = nm.Linear(16 * 8 * 8, 10, w_init=np.zeros((16 * 8 * 8, 10), np.float32), name="fc")
rnn = nm.RNN(4, 5, num_layers=2, nonlinearity="relu", dropout=0.1)
attention = nm.MultiHeadAttention(8, num_heads=2)
spectral = nm.SpectralNorm(nm.Conv2d(3, 4, 3), dim=0)
model = nm.Sequential(conv, bn, nm.PReLU(), nm.Affine(None, 10))

h = bn(conv(x), test=True)  # a call may infer, or override a constructor argument
y = lazy(x, pad=(1, 1))
z = fc(h)
seq_y, seq_h = rnn(nn.Variable((6, 2, 4)), nn.Variable((2, 1, 2, 5)))
q = nn.Variable((5, 2, 8))
attended, weights = attention(q, q, q, key_padding_mask=None)
w = spectral(x)
logits = model(x)


class Block(nm.Module):
    """A module with type hints declares ``name=`` (keyword-only): the module takes it."""

    def __init__(self, width: int, *, name: Optional[str] = None) -> None:
        self.fc = nm.Linear(width, width)

    def __call__(self, x: nn.Variable) -> nn.Variable:
        return F.relu(self.fc(x))


@PF.parametric_function_api("scaled")
def scaled_affine(x, n_out, scale=2.0, fix_parameters=False):
    """An affine layer whose output is scaled (PF's decorator refuses type hints)."""
    return scale * PF.affine(x, n_out, fix_parameters=fix_parameters)


ScaledAffine = nm.layer(scaled_affine)
block = Block(4, name="block")  # the name given to a typed __init__
blocks = nm.ModuleList([Block(4), Block(4)], name="blocks")
heads = nm.ModuleDict({"cls": nm.Linear(4, 2)}, box=nm.Linear(4, 3), name="heads")
head = nm.Sequential(blocks[0], heads["box"], F.sigmoid, name="head")
mlp = nm.wrap(lambda x, n: PF.affine(x, n))(n=3, name="mlp")
v = nn.Variable((2, 4))
outputs = [head(v), ScaledAffine(5)(v), mlp(v)]
assert block.prefix == "block" and blocks[1].prefix == "blocks/1"
assert [o.shape[1] for o in outputs] == [3, 5, 3]
assert z.shape == (2, 10) and logits.shape == (2, 10) and seq_y.shape == (6, 2, 5)
table = bn.summary((2, 16, 8, 8), model_kwargs={"test": True}, depth=1, columns=["params"])
