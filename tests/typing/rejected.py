"""Code a type checker must reject: each marked line is a wrong use of a layer class.

tests/test_stubs.py runs mypy over it and expects exactly the marked errors
(``# rejected: <mypy error code>``); it also runs each marked line after the
unmarked ones and expects the TypeError or ValueError it raises.
"""

import nnabla as nn

import nnabla_modules as nm

x = nn.Variable((2, 16))
fc = nm.Linear(16, 10)

nm.Conv2d(3, "64", 3)  # rejected: call-overload
nm.Conv2d(3, 64, 3, padding=1)  # rejected: call-overload
nm.Conv2d(outmaps=64)  # rejected: call-overload
nm.Convolution(3, 64, 3)  # rejected: call-overload
nm.ConvNd(3, 64, (3, 3), pad=1)  # rejected: call-overload
nm.Deconvolution(outmaps=4, kernel=(2, 2), stride=2)  # rejected: call-overload
nm.DepthwiseConvolution(4, (3, 3), dilation=2)  # rejected: call-overload
nm.Affine(16)  # rejected: call-overload
nm.Linear(16, 10, with_bias="no")  # rejected: call-overload
nm.BatchNorm2d(16, [1], 0.9, 1e-5, True, False, False, None, True)  # rejected: call-arg
nm.BatchNorm2d(16, eps="small")  # rejected: arg-type
nm.LSTMCell(3, state_size=None)  # rejected: call-overload
nm.Embed(10, 4, name=3)  # rejected: arg-type
nm.SpectralNorm(fc, dim="0")  # rejected: arg-type
fc(x, tset=True)  # rejected: call-arg
fc(x, x)  # rejected: call-arg
fc(x, n_outmaps="10")  # rejected: arg-type
nm.ModuleList([fc], "blocks")  # rejected: call-arg
nm.ModuleList([1, 2])  # rejected: list-item
nm.Sequential(fc, name=3)  # rejected: arg-type
fc.summary((2, 16), test=True)  # rejected: arg-type
fc.summary((2, 16), depth="all")  # rejected: arg-type
