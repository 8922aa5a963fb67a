"""Graph construction, dynamic and static training steps: ours against PF and the peers.

Sections 1-3 of the benchmark issue: the CIFAR ResNet-18 (32x3x32x32) and a
200-layer MLP, each written as plain PF code, with nnabla_modules, with
NNabla's ``nn.Module`` and with NNabla's experimental classes.
"""

import argparse

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np

from . import models
from .common import figure, interleaved, noise_of, ratio_figure, table

MLP_DEPTH, MLP_WIDTH, MLP_BATCH = 200, 64, 16
#: Ours / plain PF code, median of the per-round ratios.
BUILD_TARGET = STEP_TARGET = 1.00


def _parameters(style, net):
    if style == "pf":
        with nn.parameter_scope("pf"):
            return nn.get_parameters()
    if style == "ours":
        return net.get_parameters()
    if style == "nn.Module":
        return net.get_parameters(grad_only=True)
    return {k: v for k, v in net.get_parameters().items() if v.need_grad}


def _in_scope(style, net):
    """PF code and our drop-in model each under their own scope, so they don't share."""
    if style != "pf":
        return net

    def pf_net(x, test=False):
        with nn.parameter_scope("pf"):
            return net(x, test)

    return pf_net


def build_nets(kind):
    """``{style: (net, input Variable)}`` with every net's parameters created."""
    nets = {}
    for style in models.STYLES:
        if kind == "resnet18":
            with nn.parameter_scope(style):
                net = models.resnet18(style)
            x = nn.Variable.from_numpy_array(
                np.random.RandomState(0).randn(32, 3, 32, 32).astype(np.float32))
        else:
            with nn.parameter_scope(style):
                net = models.mlp(style, MLP_WIDTH, MLP_DEPTH, MLP_WIDTH)
            x = nn.Variable.from_numpy_array(
                np.random.RandomState(0).randn(MLP_BATCH, MLP_WIDTH).astype(np.float32))
        net = _in_scope(style, net)
        net(x)  # creates the parameters
        nets[style] = (net, x)
    return nets


def construction_cases(nets):
    return {style: (lambda net=net, x=x: net(x)) for style, (net, x) in nets.items()}


#: The PF code measured twice: its ratio to itself is the noise of the measurement.
CONTROL = "pf again"


def dynamic_step_cases(nets):
    cases = {}
    styles = [(style, style) for style in nets] + [(CONTROL, "pf")]
    for case, style in styles:
        net, x = nets[style]
        solver = S.Momentum(1e-4, 0.9)
        solver.set_parameters(_parameters(style, net))

        def step(net=net, x=x, solver=solver):
            with nn.auto_forward():
                loss = F.mean(net(x))
            solver.zero_grad()
            loss.backward(clear_buffer=True)
            solver.update()

        cases[case] = step
    return cases


def function_sequence(y):
    names = []
    y.visit(lambda f: names.append(f.info.type_name))
    return names


def function_calls(y):
    """Every function of the graph in order, with its arguments."""
    calls = []
    y.visit(lambda f: calls.append((f.info.type_name, f.info.args)))
    return calls


def static_step_cases(nets):
    cases = {}
    for style in ("pf", "ours"):
        net, x = nets[style]
        loss = F.mean(net(x))
        solver = S.Momentum(1e-4, 0.9)
        solver.set_parameters(_parameters(style, net))

        def step(loss=loss, solver=solver):
            loss.forward(clear_no_need_grad=True)
            solver.zero_grad()
            loss.backward(clear_buffer=True)
            solver.update()

        cases[style] = step
    return cases


def run(kind, rounds):
    nn.clear_parameters()
    nets = build_nets(kind)
    results = {}
    repeat = 5 if kind == "resnet18" else 2
    results["build"] = table(
        f"[{kind}] graph construction with existing parameters",
        interleaved(construction_cases(nets), rounds, repeat, f"{kind} graph construction"))
    figure(f"{kind} graph construction", f"{results['build']['ours']:.3f} x PF",
           f"<= {BUILD_TARGET:.2f}", results["build"]["ours"] <= BUILD_TARGET)
    pf_functions = function_calls(nets["pf"][0](nets["pf"][1]))
    ours_functions = function_calls(nets["ours"][0](nets["ours"][1]))
    print(f"\n[{kind}] static graph: PF builds {len(pf_functions)} functions, ours "
          f"{len(ours_functions)}")
    figure(f"{kind} static graph", "the same functions, order and arguments"
           if ours_functions == pf_functions else "different graphs",
           "identical", ours_functions == pf_functions)
    # A step of ResNet-18 on a CPU is seconds of computation for milliseconds of graph
    # construction: its ratio is the machine's noise, which the PF code measured a
    # second time in the same rounds shows.
    step_rounds = max(5, rounds // 2) if kind == "resnet18" else rounds
    dynamic = interleaved(dynamic_step_cases(nets), step_rounds, label=f"{kind} dynamic step")
    results["dynamic step"] = table(
        f"[{kind}] dynamic training step (auto_forward; '{CONTROL}': the PF code again)", dynamic)
    noise = noise_of(dynamic, case=CONTROL)
    print(f"  noise: the PF code's per-round ratios to itself stray {noise:.3f} from 1 (median)")
    ratio_figure(f"{kind} dynamic step", results["dynamic step"]["ours"], STEP_TARGET, noise)
    results["static step"] = table(
        f"[{kind}] static training step (graph built once: the same graph for both)",
        interleaved(static_step_cases(nets), step_rounds, label=f"{kind} static step"))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--model", choices=("resnet18", "mlp", "both"), default="both")
    args = parser.parse_args(argv)
    kinds = ("resnet18", "mlp") if args.model == "both" else (args.model,)
    return {kind: run(kind, args.rounds) for kind in kinds}


if __name__ == "__main__":
    main()
