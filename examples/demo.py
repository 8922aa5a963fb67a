"""A small demonstration: the blog example's ResUnit built from modules, trained a few steps."""

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np

import nnabla_modules as nm


class ResUnit(nm.Module):
    def __init__(self, inmaps=64, outmaps=64):
        self.conv0 = nm.Conv2d(inmaps, inmaps // 2, (1, 1))
        self.bn0 = nm.BatchNorm2d(inmaps // 2)
        self.conv1 = nm.Conv2d(inmaps // 2, inmaps // 2, (3, 3), pad=(1, 1))
        self.bn1 = nm.BatchNorm2d(inmaps // 2)
        self.conv2 = nm.Conv2d(inmaps // 2, outmaps, (1, 1))
        self.bn2 = nm.BatchNorm2d(outmaps)
        self.shortcut = nm.Conv2d(inmaps, outmaps, (1, 1)) if inmaps != outmaps else None

    def __call__(self, x, test=False):
        h = F.relu(self.bn0(self.conv0(x), test))
        h = F.relu(self.bn1(self.conv1(h), test))
        h = self.bn2(self.conv2(h), test)
        return F.relu(h + (self.shortcut(x) if self.shortcut else x))


def main():
    nn.seed(0)
    rng = np.random.RandomState(0)
    model = ResUnit(8, 16)
    print(model)
    x = nn.Variable.from_numpy_array(rng.randn(16, 8, 8, 8).astype(np.float32))
    target = nn.Variable.from_numpy_array(rng.rand(16, 16, 8, 8).astype(np.float32))
    loss = F.mean(F.squared_error(model(x), target))
    solver = S.Adam(1e-2)
    solver.set_parameters(model.get_parameters())
    for step in range(20):
        loss.forward()
        solver.zero_grad()
        loss.backward()
        solver.update()
        if step % 5 == 0 or step == 19:
            print(f"step {step:2d}  loss {float(loss.d):.4f}")
    print("keys in nn.get_parameters():", len(nn.get_parameters(grad_only=False)))


if __name__ == "__main__":
    main()
