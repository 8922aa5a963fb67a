"""Migrating PF code to modules: the same network both ways, step for step.

1. ``cnn_pf`` is a network written the nnabla-examples way, with
   ``nnabla.parametric_functions``; ``CNN`` is the same network as modules.
2. Both train from the same seed on the same batches: the losses are identical
   at every step, and so are the registry keys (``name=""``, the drop-in mode).
3. In named mode (``CNN(name="cnn")``) the keys equal those of the PF code run
   inside ``nn.parameter_scope("cnn")``.
4. The PF model's checkpoint, saved with ``nn.save_parameters``, loads into the
   module version with ``model.load_parameters(path)``, and predicts the same.
5. The smallest refactor: the unchanged PF function inside a module's ``__call__``.

Run it with ``python examples/migration.py``; every claim above is an assert.
"""

import importlib.util
import os
import tempfile

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.solvers as S
import numpy as np

import nnabla_modules as nm

# --- before: PF code -----------------------------------------------------------------


def cnn_pf(x, test=False):
    """A small CNN for 1x8x8 images, as nnabla-examples training scripts write it."""
    h = PF.convolution(x, 16, (3, 3), pad=(1, 1), name="conv1")
    h = F.relu(PF.batch_normalization(h, batch_stat=not test, name="bn1"))
    h = F.max_pooling(h, (2, 2))
    h = PF.convolution(h, 32, (3, 3), pad=(1, 1), name="conv2")
    h = F.relu(PF.batch_normalization(h, batch_stat=not test, name="bn2"))
    h = F.max_pooling(h, (2, 2))
    return PF.affine(h, 10, name="fc")


# --- after: modules --------------------------------------------------------------------


class CNN(nm.Module):
    """The same network: one attribute per PF call, named as the PF call was."""

    def __init__(self):
        self.conv1 = nm.Conv2d(1, 16, (3, 3), pad=(1, 1))
        self.bn1 = nm.BatchNorm2d(16)
        self.conv2 = nm.Conv2d(16, 32, (3, 3), pad=(1, 1))
        self.bn2 = nm.BatchNorm2d(32)
        self.fc = nm.Linear(32 * 2 * 2, 10)

    def __call__(self, x, test=False):
        h = F.relu(self.bn1(self.conv1(x), test))
        h = F.max_pooling(h, (2, 2))
        h = F.relu(self.bn2(self.conv2(h), test))
        h = F.max_pooling(h, (2, 2))
        return self.fc(h)


class LegacyCNN(nm.Module):
    """The smallest refactor: the PF function, unchanged, inside ``__call__``."""

    def __call__(self, x, test=False):
        return cnn_pf(x, test)


# --- the same training loop for both ---------------------------------------------------


def batches(steps, batch_size=16, seed=0):
    """Random images and labels, the same for every caller."""
    rng = np.random.RandomState(seed)
    for _ in range(steps):
        yield rng.rand(batch_size, 1, 8, 8).astype(np.float32), rng.randint(0, 10, (batch_size, 1))


def train(net, params, steps=10, seed=1):
    """Builds the graph with ``net``, trains ``params()`` with Adam; returns the losses.

    ``params`` is called after the graph is built: PF creates its parameters then.
    """
    nn.seed(seed)  # PF's initializers draw from NNabla's random generator
    x, t = nn.Variable((16, 1, 8, 8)), nn.Variable((16, 1))
    loss = F.mean(F.softmax_cross_entropy(net(x), t))
    solver = S.Adam(1e-3)
    solver.set_parameters(params())
    losses = []
    for images, labels in batches(steps):
        x.d, t.d = images, labels
        loss.forward()
        solver.zero_grad()
        loss.backward()
        solver.update()
        losses.append(float(loss.d))
    return losses


def main():
    workdir = tempfile.mkdtemp(prefix="nnabla_modules_migration_")

    # 1-2. PF code and drop-in modules: the same keys, the same losses.
    nn.clear_parameters()
    pf_losses = train(cnn_pf, nn.get_parameters)
    pf_keys = list(nn.get_parameters(grad_only=False))
    pf_checkpoint = os.path.join(workdir, "cnn_pf.h5")
    nn.save_parameters(pf_checkpoint)  # the old script's checkpoint
    x = nn.Variable.from_numpy_array(next(batches(1, seed=5))[0])
    pf_prediction = cnn_pf(x, test=True)
    pf_prediction.forward()

    nn.clear_parameters()
    model = CNN(name="")  # drop-in: no level of its own
    module_losses = train(model, model.get_parameters)
    module_keys = list(nn.get_parameters(grad_only=False))
    assert module_keys == pf_keys, (module_keys, pf_keys)
    assert module_losses == pf_losses, (module_losses, pf_losses)  # bit for bit
    print("registry keys, PF code and CNN(name=''):")
    for key in pf_keys:
        print("   ", key)
    print("losses, step by step:")
    for step, (a, b) in enumerate(zip(pf_losses, module_losses)):
        print(f"    step {step}: PF {a:.6f}  modules {b:.6f}")

    # 3. Named mode: the keys of the PF code inside nn.parameter_scope("cnn").
    nn.clear_parameters()
    with nn.parameter_scope("cnn"):
        cnn_pf(nn.Variable((1, 1, 8, 8)))
    scoped_keys = list(nn.get_parameters(grad_only=False))
    nn.clear_parameters()
    named = CNN(name="cnn")
    named.get_parameters()  # layers know their input sizes: parameters exist now
    assert list(nn.get_parameters(grad_only=False)) == scoped_keys
    print("named mode: CNN(name='cnn') ->", scoped_keys[0], "...")

    # 4. The old checkpoint loads into the module version.
    if importlib.util.find_spec("nnabla_modules.checkpoint") is None:
        print("skipped loading the PF checkpoint: nnabla_modules.checkpoint is not there yet")
    else:
        named.load_parameters(pf_checkpoint)  # keys relative to the module: they match
        y = named(x, test=True)
        y.forward()
        assert np.array_equal(y.d, pf_prediction.d)
        print(f"loaded {os.path.basename(pf_checkpoint)} into {named.prefix!r}: same predictions")

    # 5. PF code inside __call__ lands under the module's prefix.
    nn.clear_parameters()
    legacy = LegacyCNN()
    legacy(nn.Variable((1, 1, 8, 8)))
    legacy_keys = list(legacy.get_parameters(grad_only=False))
    assert legacy_keys == pf_keys
    assert list(nn.get_parameters(grad_only=False)) == ["legacy_cnn/" + k for k in pf_keys]
    print("LegacyCNN() ->", "legacy_cnn/" + legacy_keys[0], "...")
    print("migration checks passed")


if __name__ == "__main__":
    main()
