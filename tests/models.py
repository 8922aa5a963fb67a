"""Reference models used by several tests: the blog example's ResUnit, as modules and as PF code."""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

import nnabla_modules as PFC


class ResUnit(PFC.Module):
    """NNabla's blog example (docs/migration.md), verbatim but for the import."""

    def __init__(self, inmaps=64, outmaps=64):
        self.conv0 = PFC.Conv2d(inmaps, inmaps // 2, (1, 1))
        self.bn0 = PFC.BatchNorm2d(inmaps // 2)
        self.conv1 = PFC.Conv2d(inmaps // 2, inmaps // 2, (3, 3), pad=(1, 1))
        self.bn1 = PFC.BatchNorm2d(inmaps // 2)
        self.conv2 = PFC.Conv2d(inmaps // 2, outmaps, (1, 1))
        self.bn2 = PFC.BatchNorm2d(outmaps)
        self.act = F.relu
        self.shortcut_func = inmaps != outmaps
        if self.shortcut_func:
            self.shortcut_conv = PFC.Conv2d(inmaps, outmaps, (3, 3), pad=(1, 1))
            self.shortcut_bn = PFC.BatchNorm2d(outmaps)

    def __call__(self, x, test=False):
        s = h = x
        h = self.act(self.bn0(self.conv0(h), test))
        h = self.act(self.bn1(self.conv1(h), test))
        h = self.bn2(self.conv2(h), test)
        if self.shortcut_func:
            s = self.shortcut_bn(self.shortcut_conv(s), test)
        return self.act(h + s)


def res_unit_pf(x, inmaps=64, outmaps=64, test=False):
    """The same network as plain PF code, the way it was written before modules."""
    s = h = x
    h = F.relu(PF.batch_normalization(PF.convolution(h, inmaps // 2, (1, 1), name="conv0"),
                                      batch_stat=not test, name="bn0"))
    h = F.relu(PF.batch_normalization(
        PF.convolution(h, inmaps // 2, (3, 3), pad=(1, 1), name="conv1"),
        batch_stat=not test, name="bn1"))
    h = PF.batch_normalization(PF.convolution(h, outmaps, (1, 1), name="conv2"),
                               batch_stat=not test, name="bn2")
    if inmaps != outmaps:
        s = PF.batch_normalization(
            PF.convolution(s, outmaps, (3, 3), pad=(1, 1), name="shortcut_conv"),
            batch_stat=not test, name="shortcut_bn")
    return F.relu(h + s)


class Stack(PFC.Module):
    """Lists, nested lists, dicts, a list filled after assignment, a shared child."""

    def __init__(self):
        self.stem = PFC.Conv2d(3, 4, (3, 3), pad=(1, 1))
        self.blocks = [PFC.Conv2d(4, 4, (1, 1)), [PFC.BatchNorm2d(4), PFC.Conv2d(4, 4, (1, 1))]]
        self.heads = {"cls": PFC.Affine(4 * 8 * 8, 10), "box": PFC.Affine(4 * 8 * 8, 4)}
        self.late = []
        self.late.append(PFC.Conv2d(4, 4, (1, 1)))
        self.again = self.stem  # the same instance held twice: one set of weights

    def __call__(self, x):
        h = self.stem(x)
        h = self.blocks[0](h)
        h = self.blocks[1][1](self.blocks[1][0](h))
        h = self.late[0](h)
        return self.heads["cls"](h), self.heads["box"](h)


def stack_pf(x):
    with nn.parameter_scope("stem"):
        h = PF.convolution(x, 4, (3, 3), pad=(1, 1))
    with nn.parameter_scope("blocks/0"):
        h = PF.convolution(h, 4, (1, 1))
    with nn.parameter_scope("blocks/1/0"):
        h = PF.batch_normalization(h)
    with nn.parameter_scope("blocks/1/1"):
        h = PF.convolution(h, 4, (1, 1))
    with nn.parameter_scope("late/0"):
        h = PF.convolution(h, 4, (1, 1))
    with nn.parameter_scope("heads/cls"):
        cls = PF.affine(h, 10)
    with nn.parameter_scope("heads/box"):
        box = PF.affine(h, 4)
    return cls, box
