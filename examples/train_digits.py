"""Trains a small ResNet built from nnabla_modules on scikit-learn's handwritten digits.

The data set ships with scikit-learn (1,797 images of 8x8 pixels, 10 classes),
so nothing is downloaded. The script trains with a tqdm progress bar (on
stderr), prints the loss, the train and validation accuracy and the time of
every epoch, saves the best model with ``model.save_parameters``, loads that
file into a *fresh* model (another instance, under another name) with
``load_parameters`` and evaluates it again. Next to the checkpoint it writes
``nnabla.monitor`` series (``<checkpoint>_monitor/*.series.txt``) and the
training curve drawn from them (``<checkpoint>_curve.png``).

    python examples/train_digits.py                       # CPU, float, 15 epochs
    python examples/train_digits.py --context cudnn       # GPU (pip install -e .[cuda])
    python examples/train_digits.py --context cudnn --type-config half   # mixed precision
"""

import argparse
import importlib.util
import os
import sys
import time

import nnabla_modules as nm  # isort: skip  (first: it imports NNabla without its INFO line)
import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np
from nnabla.ext_utils import get_extension_context
from nnabla.monitor import Monitor, MonitorSeries, MonitorTimeElapsed
from sklearn.datasets import load_digits
from tqdm import tqdm

# --- the model: plain PyTorch-style classes, weights in nn.get_parameters() ----


class BasicBlock(nm.Module):
    """Two 3x3 convolutions with batch normalization and an identity (or 1x1) shortcut."""

    def __init__(self, inmaps, outmaps, stride=1):
        self.conv1 = nm.Conv2d(inmaps, outmaps, 3, pad=1, stride=stride, with_bias=False)
        self.bn1 = nm.BatchNorm2d(outmaps)
        self.conv2 = nm.Conv2d(outmaps, outmaps, 3, pad=1, with_bias=False)
        self.bn2 = nm.BatchNorm2d(outmaps)
        self.shortcut = None
        if stride != 1 or inmaps != outmaps:
            self.shortcut = nm.Conv2d(inmaps, outmaps, 1, stride=stride, with_bias=False)
            self.shortcut_bn = nm.BatchNorm2d(outmaps)

    def __call__(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        s = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))
        return F.relu(h + s)


class ResNet(nm.Module):
    """A stem, one residual block per width (8x8 -> 4x4 -> 2x2), global pooling, a classifier."""

    def __init__(self, n_classes=10, widths=(16, 32, 64)):
        self.stem = nm.Conv2d(1, widths[0], 3, pad=1, with_bias=False)
        self.stem_bn = nm.BatchNorm2d(widths[0])
        self.blocks = [BasicBlock(widths[0], widths[0])]
        for inmaps, outmaps in zip(widths, widths[1:]):
            self.blocks.append(BasicBlock(inmaps, outmaps, stride=2))
        self.fc = nm.Linear(widths[-1], n_classes)

    def __call__(self, x):
        h = F.relu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            h = block(h)
        return self.fc(F.global_average_pooling(h))


# --- data ------------------------------------------------------------------------


def load_data(val_fraction=0.2, seed=0):
    """The digits as ``(N, 1, 8, 8)`` float32 in [0, 1], split per class into train/val."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    labels = digits.target.astype(np.int32)[:, None]
    rng = np.random.RandomState(seed)
    val = np.zeros(len(labels), bool)
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels[:, 0] == cls))
        val[idx[: int(round(len(idx) * val_fraction))]] = True
    return (images[~val], labels[~val]), (images[val], labels[val])


def augment(images, rng):
    """Shifts each image by up to one pixel in each direction (zero padding)."""
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(rng.randint(0, 3, size=(len(images), 2))):
        out[i] = padded[i, :, dy : dy + 8, dx : dx + 8]
    return out


# --- training --------------------------------------------------------------------


class Classifier:
    """The graphs of one model: a training graph (loss) and an inference graph (logits)."""

    def __init__(self, model, batch_size, eval_batch_size):
        model.train()  # the mode is read when a graph is built
        self.x = nn.Variable((batch_size, 1, 8, 8))
        self.t = nn.Variable((batch_size, 1))
        self.logits = model(self.x)
        self.logits.persistent = True  # read for the training accuracy after backward
        self.loss = F.mean(F.softmax_cross_entropy(self.logits, self.t))
        model.eval()  # batch normalization uses the running statistics from here on
        self.vx = nn.Variable((eval_batch_size, 1, 8, 8))
        self.vlogits = model(self.vx)
        model.train()

    def accuracy(self, images, labels):
        """Accuracy of the inference graph over a whole set."""
        n, correct = self.vx.shape[0], 0
        for start in range(0, len(images), n):
            batch = images[start : start + n]
            self.vx.d[: len(batch)] = batch
            self.vlogits.forward(clear_buffer=True)
            predicted = self.vlogits.d[: len(batch)].argmax(axis=1)
            correct += int((predicted == labels[start : start + n, 0]).sum())
        return correct / len(images)


def save(model, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    model.save_parameters(path)  # the module's own parameters, keys relative to it


# --- monitoring: nnabla.monitor's text series, and a plot drawn from them -------------


class TrainingLog:
    """``nnabla.monitor`` series in ``<checkpoint>_monitor/``, one line per step or epoch."""

    def __init__(self, checkpoint):
        self.folder = os.path.splitext(checkpoint)[0] + "_monitor"
        monitor = Monitor(self.folder)
        self.loss = MonitorSeries("training loss", monitor, verbose=False)
        self.epoch_loss = MonitorSeries("epoch loss", monitor, verbose=False)
        self.train_accuracy = MonitorSeries("training accuracy", monitor, verbose=False)
        self.val_accuracy = MonitorSeries("validation accuracy", monitor, verbose=False)
        self.time = MonitorTimeElapsed("epoch time", monitor, interval=1, verbose=False)

    def series(self, name):
        """The ``(index, value)`` columns of one series file as two arrays."""
        path = os.path.join(self.folder, name.replace(" ", "-") + ".series.txt")
        with open(path) as f:
            return np.array([line.split() for line in f], float).reshape(-1, 2).T

    def plot(self, path, steps_per_epoch):
        """Draws loss and accuracy per epoch from the series files into a PNG."""
        import matplotlib

        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
        step, loss = self.series("training loss")
        left.plot(step / steps_per_epoch, loss, lw=0.6, alpha=0.35, label="per step")
        epoch, epoch_loss = self.series("epoch loss")
        left.plot(epoch - 0.5, epoch_loss, "o-", ms=3, label="epoch mean")  # mid-epoch
        left.set(xlabel="epoch", ylabel="training loss", yscale="log")
        left.legend()
        for name in ("training accuracy", "validation accuracy"):
            right.plot(*self.series(name), "o-", ms=3, label=name)
        right.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        right.legend(loc="lower right")
        for axes in (left, right):
            axes.grid(alpha=0.3)
        fig.suptitle("ResNet on scikit-learn's digits (examples/train_digits.py)", fontsize=10)
        fig.savefig(path, dpi=110)
        plt.close(fig)


# --- the command line ---------------------------------------------------------------


def at_least_one(text):
    """An argparse type: an integer >= 1 (``--epochs 0`` would train nothing and report nothing)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--context",
        default="cpu",
        choices=["cpu", "cudnn"],
        help="NNabla extension: cpu, or cudnn for an NVIDIA GPU",
    )
    parser.add_argument(
        "--type-config",
        default="float",
        choices=["float", "half"],
        help="half: mixed precision (float16 compute, float32 weights); for GPUs",
    )
    parser.add_argument("--device-id", default="0", help="GPU number for --context cudnn")
    parser.add_argument("--epochs", type=at_least_one, default=15)
    parser.add_argument("--batch-size", type=at_least_one, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--train-limit",
        type=int,
        default=None,
        help="use only the first N training images (quick checks)",
    )
    parser.add_argument(
        "--checkpoint",
        default=os.path.join("examples", "checkpoints", "digits_resnet.h5"),
        help="where the best model is saved (.h5 or .protobuf); the monitor series "
        "and the training curve are written next to it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def extension_context(args):
    """NNabla's context for the arguments; a missing CUDA extension is a one-line exit."""
    if importlib.util.find_spec(f"nnabla_ext.{args.context}") is None:
        print(
            f"error: --context {args.context} needs NNabla's CUDA extension, which is not "
            "installed; install the [cuda] extra: pip install -e '.[cuda]'",
            file=sys.stderr,
        )
        sys.exit(2)  # the status of a usage error, as argparse gives
    if args.type_config == "half" and args.context == "cpu":
        print(
            "warning: --type-config half on the CPU runs 100-200x slower than float "
            "(NNabla's CPU extension computes float16 in software); it is meant for "
            "--context cudnn",
            file=sys.stderr,
        )
    return get_extension_context(
        args.context, device_id=args.device_id, type_config=args.type_config
    )


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    ctx = extension_context(args)
    nn.set_default_context(ctx)  # modules never pick a device: they use this context
    nn.seed(args.seed)
    rng = np.random.RandomState(args.seed)

    (train_x, train_y), (val_x, val_y) = load_data(seed=args.seed)
    if args.train_limit:
        train_x, train_y = train_x[: args.train_limit], train_y[: args.train_limit]
    print(f"context {ctx.backend}, {len(train_x)} training and {len(val_x)} validation images")

    model = ResNet(name="resnet")
    graphs = Classifier(model, args.batch_size, eval_batch_size=len(val_x))
    params = model.get_parameters()  # trainable ones only, in registry order
    print(
        f"{type(model).__name__} {model.prefix!r}: {len(params)} trainable parameter "
        f"arrays, {sum(p.size for p in params.values()):,} values"
    )

    solver = S.Adam(args.learning_rate)
    solver.set_parameters(params)  # a dict: get_parameters(), not the generator parameters()
    log = TrainingLog(args.checkpoint)
    steps_per_epoch = len(train_x) // args.batch_size
    total_steps = max(1, steps_per_epoch * args.epochs)
    loss_scale = 1024.0 if args.type_config == "half" else 1.0  # dynamic loss scaling
    best, step = -1.0, 0
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        order = rng.permutation(len(train_x))
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch}/{args.epochs}",
            leave=False,
            disable=True if args.quiet else None,  # None: off when stderr is not a terminal
            file=sys.stderr,  # stdout keeps one line per epoch, also when redirected
        )
        correct = seen = 0
        losses = []
        for i in bar:
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            graphs.x.d = augment(train_x[idx], rng)
            graphs.t.d = train_y[idx]
            # cosine learning-rate schedule
            solver.set_learning_rate(
                args.learning_rate * 0.5 * (1 + np.cos(np.pi * step / total_steps))
            )
            graphs.loss.forward(clear_no_need_grad=True)
            solver.zero_grad()
            graphs.loss.backward(loss_scale, clear_buffer=True)
            if args.type_config == "half" and solver.check_inf_or_nan_grad():
                loss_scale /= 2  # an overflow in float16: skip this step
                continue
            solver.scale_grad(1.0 / loss_scale)
            solver.update()
            step += 1
            loss = float(graphs.loss.d)
            losses.append(loss)
            log.loss.add(step, loss)
            correct += int((graphs.logits.d.argmax(axis=1) == graphs.t.d[:, 0]).sum())
            seen += len(idx)
            bar.set_postfix(loss=f"{loss:.3f}")
        train_loss = float(np.mean(losses)) if losses else float("nan")
        train_acc = correct / max(seen, 1)
        val_acc = graphs.accuracy(val_x, val_y)
        seconds = time.perf_counter() - epoch_started
        log.epoch_loss.add(epoch, train_loss)
        log.train_accuracy.add(epoch, train_acc)
        log.val_accuracy.add(epoch, val_acc)
        log.time.add(epoch)
        note = ""
        if val_acc > best:
            best = val_acc
            save(model, args.checkpoint)
            note = f"  saved {args.checkpoint}"
        print(
            f"epoch {epoch:2d}  loss {train_loss:.4f}  train accuracy {train_acc:.4f}  "
            f"validation accuracy {val_acc:.4f}  {seconds:.1f} s{note}",
            flush=True,
        )

    curve = os.path.splitext(args.checkpoint)[0] + "_curve.png"
    log.plot(curve, steps_per_epoch)
    print(f"monitor series in {log.folder}, training curve {curve}")

    # A fresh model under another name: the checkpoint's keys are relative to the module.
    fresh = ResNet(name="reloaded")
    fresh.load_parameters(args.checkpoint)  # in place, into the fresh model's Variables
    final = Classifier(fresh, args.batch_size, eval_batch_size=len(val_x))
    final_acc = final.accuracy(val_x, val_y)
    print(f"best model reloaded into {fresh.prefix!r} from {args.checkpoint}")
    print(f"final validation accuracy {final_acc:.4f}  ({time.perf_counter() - started:.1f} s)")
    return final_acc


if __name__ == "__main__":
    main()
