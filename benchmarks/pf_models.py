"""The benchmark models as plain PF code: the baseline every ratio is taken to.

Kept apart from ``benchmarks.models`` so that a process can build them without
importing nnabla_modules (``benchmarks.fresh``).
"""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # CIFAR ResNet-18: (outmaps, first stride)
N_CLASSES = 10


def blocks():
    """(stage, block, inmaps, outmaps, stride) of ResNet-18's eight basic blocks."""
    inmaps = 64
    for stage, (outmaps, stride) in enumerate(STAGES, 1):
        for block in range(2):
            yield stage, block, inmaps, outmaps, stride if block == 0 else 1
            inmaps = outmaps


def pool_and_classify(h, classify):
    return classify(F.mean(h, axis=(2, 3)))


def conv_bn(h, outmaps, kernel, stride, name, test):
    pad = (kernel // 2,) * 2
    h = PF.convolution(h, outmaps, (kernel,) * 2, pad=pad, stride=(stride,) * 2,
                       with_bias=False, name=name + "conv")
    return PF.batch_normalization(h, batch_stat=not test, name=name + "bn")


def resnet18(x, test=False):
    h = F.relu(conv_bn(x, 64, 3, 1, "stem_", test))
    for stage, block, inmaps, outmaps, stride in blocks():
        with nn.parameter_scope(f"layer{stage}/{block}"):
            s = h
            h = F.relu(conv_bn(h, outmaps, 3, stride, "1_", test))
            h = conv_bn(h, outmaps, 3, 1, "2_", test)
            if stride != 1 or inmaps != outmaps:
                s = conv_bn(s, outmaps, 1, stride, "down_", test)
            h = F.relu(h + s)
    return pool_and_classify(h, lambda v: PF.affine(v, N_CLASSES, name="fc"))


def mlp(x, depth, width, test=False):
    h = x
    for i in range(depth):
        h = F.relu(PF.affine(h, width, name=f"fc{i}"))
    return h


def conv_bn_stack(x, depth, maps, test=False):
    """``depth`` 3x3 convolutions of ``maps`` maps, each with batch normalization and ReLU."""
    h = x
    for i in range(depth):
        h = F.relu(conv_bn(h, maps, 3, 1, f"l{i}_", test))
    return h
