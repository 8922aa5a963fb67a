"""Code a type checker must accept: the ways the layer classes are constructed and called.

tests/test_stubs.py runs mypy over it (no error allowed) and runs it, so
everything here also works.
"""

import nnabla as nn
import nnabla.initializer as I
import numpy as np

import nnabla_modules as nm

x = nn.Variable((2, 3, 8, 8))
channels = np.int64(x.shape[1])  # sizes read from shapes may be numpy ints

conv = nm.Conv2d(3, 16, 3, pad=1, name="conv")  # sizes positionally
lazy = nm.Conv2d(None, 16, (3, 3))  # the input size read at the first call
by_keyword = nm.Conv2d(outmaps=16, kernel=(3, 3), stride=(1, 1), with_bias=False)
from_shape = nm.Convolution(channels, 8, (3, 3), w_init=I.NormalInitializer(0.1))
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
assert z.shape == (2, 10) and logits.shape == (2, 10) and seq_y.shape == (6, 2, 5)
