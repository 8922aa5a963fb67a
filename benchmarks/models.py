"""The benchmark models, each written four ways: plain PF code, nnabla_modules,
NNabla's own ``nn.Module`` and NNabla's experimental parametric-function classes.

All four build the same functions in the same order (checked by
``benchmarks.graph``); the PF code is the baseline every ratio is taken to.
"""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
from nnabla.experimental.parametric_function_class import affine as _exp_affine
from nnabla.experimental.parametric_function_class import batch_normalization as _exp_bn
from nnabla.experimental.parametric_function_class import convolution as _exp_conv
from nnabla.experimental.parametric_function_class import module as _exp_module

import nnabla_modules as nm

from . import pf_models
from .pf_models import N_CLASSES, STAGES
from .pf_models import blocks as _blocks
from .pf_models import conv_bn as _conv_bn_pf
from .pf_models import pool_and_classify as _pool_and_classify


class EXP:  # the experimental package's __init__ exports nothing
    Module = _exp_module.Module
    Affine = _exp_affine.Affine
    Conv2d = _exp_conv.Conv2d
    BatchNorm2d = _exp_bn.BatchNorm2d




# --- plain PF code (the baseline): benchmarks.pf_models -------------------------------


# --- nnabla_modules ---------------------------------------------------------------------


class ConvBn(nm.Module):
    """A grouping the PF code does not have: no level of its own (built with name="")."""

    def __init__(self, inmaps, outmaps, kernel, stride, prefix):
        pad = (kernel // 2,) * 2
        self.conv = nm.Conv2d(inmaps, outmaps, (kernel,) * 2, pad=pad, stride=(stride,) * 2,
                              with_bias=False, name=prefix + "conv")
        self.bn = nm.BatchNorm2d(outmaps, name=prefix + "bn")

    def __call__(self, x, test=False):
        return self.bn(self.conv(x), test)


class BasicBlock(nm.Module):
    def __init__(self, inmaps, outmaps, stride):
        self.c1 = ConvBn(inmaps, outmaps, 3, stride, "1_", name="")
        self.c2 = ConvBn(outmaps, outmaps, 3, 1, "2_", name="")
        self.down = None
        if stride != 1 or inmaps != outmaps:
            self.down = ConvBn(inmaps, outmaps, 1, stride, "down_", name="")

    def __call__(self, x, test=False):
        h = self.c2(F.relu(self.c1(x, test)), test)
        return F.relu(h + (self.down(x, test) if self.down is not None else x))


class ResNet18(nm.Module):
    def __init__(self):
        self.stem = ConvBn(3, 64, 3, 1, "stem_", name="")
        for stage, block, i, o, s in _blocks():  # self.layer1 = [block, block]: layer1/0, ...
            if block == 0:
                setattr(self, f"layer{stage}", [])
            getattr(self, f"layer{stage}").append(BasicBlock(i, o, s))
        self.fc = nm.Affine(512, N_CLASSES)

    def __call__(self, x, test=False):
        h = F.relu(self.stem(x, test))
        for stage in range(1, len(STAGES) + 1):
            for block in getattr(self, f"layer{stage}"):
                h = block(h, test)
        return _pool_and_classify(h, self.fc)


class MLP(nm.Module):
    def __init__(self, n_in, depth, width):
        self.layers = [nm.Affine(n_in if i == 0 else width, width, name=f"fc{i}")
                       for i in range(depth)]

    def __call__(self, x, test=False):
        for layer in self.layers:
            x = F.relu(layer(x))
        return x


class ConvBnStack(nm.Module):
    def __init__(self, depth, maps):
        self.layers = [ConvBn(maps, maps, 3, 1, f"l{i}_", name="") for i in range(depth)]

    def __call__(self, x, test=False):
        for layer in self.layers:
            x = F.relu(layer(x, test))
        return x


# --- NNabla's nn.Module ----------------------------------------------------------------


class NnConvBn(nn.Module):
    def __init__(self, outmaps, kernel, stride, name):
        self.outmaps, self.kernel, self.stride, self.prefix = outmaps, kernel, stride, name

    def call(self, x, test=False):
        return _conv_bn_pf(x, self.outmaps, self.kernel, self.stride, self.prefix, test)


class NnBasicBlock(nn.Module):
    def __init__(self, inmaps, outmaps, stride):
        self.c1 = NnConvBn(outmaps, 3, stride, "1_")
        self.c2 = NnConvBn(outmaps, 3, 1, "2_")
        # nn.Module keeps submodules apart from __dict__: a plain `self.down = None`
        # first would shadow the module assigned later.
        self.has_down = stride != 1 or inmaps != outmaps
        if self.has_down:
            self.down = NnConvBn(outmaps, 1, stride, "down_")

    def call(self, x, test=False):
        h = self.c2(F.relu(self.c1(x, test)), test)
        return F.relu(h + (self.down(x, test) if self.has_down else x))


class NnResNet18(nn.Module):
    def __init__(self):
        self.stem = NnConvBn(64, 3, 1, "stem_")
        for index, (_, _, i, o, s) in enumerate(_blocks()):
            setattr(self, f"block{index}", NnBasicBlock(i, o, s))

    def call(self, x, test=False):
        h = F.relu(self.stem(x, test))
        for index in range(8):
            h = getattr(self, f"block{index}")(h, test)
        return _pool_and_classify(h, lambda v: PF.affine(v, N_CLASSES, name="fc"))


class NnMLP(nn.Module):
    def __init__(self, depth, width):
        self.depth, self.width = depth, width

    def call(self, x, test=False):
        return pf_models.mlp(x, self.depth, self.width)


# --- NNabla's experimental parametric-function classes -------------------------------


class ExpConvBn(EXP.Module):
    def __init__(self, inmaps, outmaps, kernel, stride):
        pad = (kernel // 2,) * 2
        self.conv = EXP.Conv2d(inmaps, outmaps, (kernel,) * 2, pad=pad, stride=(stride,) * 2,
                               with_bias=False)
        self.bn = EXP.BatchNorm2d(outmaps)

    def __call__(self, x, test=False):
        return self.bn(self.conv(x), test)


class ExpBasicBlock(EXP.Module):
    def __init__(self, inmaps, outmaps, stride):
        self.c1 = ExpConvBn(inmaps, outmaps, 3, stride)
        self.c2 = ExpConvBn(outmaps, outmaps, 3, 1)
        self.down = None
        if stride != 1 or inmaps != outmaps:
            self.down = ExpConvBn(inmaps, outmaps, 1, stride)

    def __call__(self, x, test=False):
        h = self.c2(F.relu(self.c1(x, test)), test)
        return F.relu(h + (self.down(x, test) if self.down is not None else x))


class ExpResNet18(EXP.Module):
    def __init__(self):
        self.stem = ExpConvBn(3, 64, 3, 1)
        self.blocks = [ExpBasicBlock(i, o, s) for _, _, i, o, s in _blocks()]
        for index, block in enumerate(self.blocks):  # its get_parameters sees attributes only
            setattr(self, f"block{index}", block)
        self.fc = EXP.Affine(512, N_CLASSES)

    def __call__(self, x, test=False):
        h = F.relu(self.stem(x, test))
        for block in self.blocks:
            h = block(h, test)
        return _pool_and_classify(h, self.fc)


class ExpMLP(EXP.Module):
    def __init__(self, n_in, depth, width):
        self.layers = [EXP.Affine(n_in if i == 0 else width, width) for i in range(depth)]
        for index, layer in enumerate(self.layers):
            setattr(self, f"fc{index}", layer)

    def __call__(self, x, test=False):
        for layer in self.layers:
            x = F.relu(layer(x))
        return x


# --- one interface over the four ----------------------------------------------------------


def resnet18(style):
    """A callable ``net(x, test=False)`` of the given style, parameters not yet created."""
    if style == "pf":
        return pf_models.resnet18
    return {"ours": lambda: ResNet18(name=""), "nn.Module": NnResNet18,
            "experimental": ExpResNet18}[style]()


def mlp(style, n_in, depth, width):
    if style == "pf":
        return lambda x, test=False: pf_models.mlp(x, depth, width, test)
    return {"ours": lambda: MLP(n_in, depth, width, name=""),
            "nn.Module": lambda: NnMLP(depth, width),
            "experimental": lambda: ExpMLP(n_in, depth, width)}[style]()


STYLES = ("pf", "ours", "nn.Module", "experimental")
