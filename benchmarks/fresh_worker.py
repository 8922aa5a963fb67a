"""One fresh process of ``benchmarks.fresh``: one network's graph construction and training step.

    python -m benchmarks.fresh_worker STYLE MODEL SAMPLES

``STYLE``: ``pf`` (plain PF code; nnabla_modules is never imported) or
``ours``. Creates the network's parameters with a first call, then times
``SAMPLES`` graph constructions (and, for every model but ResNet-18,
``SAMPLES`` dynamic training steps: build, forward, backward, update under
``nn.auto_forward``) and prints the medians in seconds as JSON.
"""

import json
import statistics
import sys
import time

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np

from . import pf_models

MLP_DEPTH, MLP_WIDTH = 200, 64
CONV_DEPTH, CONV_MAPS = 20, 16
#: model: (input shape, PF code, our module, timed tasks)
MODELS = {
    "mlp": ((16, MLP_WIDTH), lambda x: pf_models.mlp(x, MLP_DEPTH, MLP_WIDTH),
            lambda models: models.MLP(MLP_WIDTH, MLP_DEPTH, MLP_WIDTH, name=""),
            ("build", "step")),
    "conv-bn": ((8, CONV_MAPS, 8, 8), lambda x: pf_models.conv_bn_stack(x, CONV_DEPTH, CONV_MAPS),
                lambda models: models.ConvBnStack(CONV_DEPTH, CONV_MAPS, name=""),
                ("build", "step")),
    "resnet18": ((32, 3, 32, 32), pf_models.resnet18, lambda models: models.ResNet18(name=""),
                 ("build",)),
}


def _median_seconds(fn, samples):
    fn()  # warm up
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(style, model, samples):
    shape, pf_net, our_net, tasks = MODELS[model]
    if style == "pf":
        net, parameters = pf_net, nn.get_parameters
    else:
        from . import models  # imports nnabla_modules

        module = our_net(models)
        net, parameters = module, module.get_parameters
    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(*shape).astype(np.float32))
    net(x)  # creates the parameters
    solver = S.Momentum(1e-4, 0.9)
    solver.set_parameters(parameters())

    def step():
        with nn.auto_forward():
            loss = F.mean(net(x))
        solver.zero_grad()
        loss.backward(clear_buffer=True)
        solver.update()

    cases = {"build": lambda: net(x), "step": step}
    return {task: _median_seconds(cases[task], samples) for task in tasks}


if __name__ == "__main__":
    style, model, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
    medians = measure(style, model, samples)
    if style == "pf" and "nnabla_modules" in sys.modules:
        sys.exit("the PF code's process imported nnabla_modules: its figures would be ours")
    print(json.dumps(medians))
