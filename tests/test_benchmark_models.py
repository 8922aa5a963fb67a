"""The benchmark's networks written each way build one graph, so their timings compare."""

import nnabla as nn
import pytest

from benchmarks import fresh_worker, graph, models


@pytest.mark.parametrize("kind", ["resnet18", "mlp"])
def test_ours_builds_the_pf_graph_with_the_pf_keys(kind):
    nets = graph.build_nets(kind)
    sequences = {style: graph.function_sequence(net(x)) for style, (net, x) in nets.items()}
    assert sequences["ours"] == sequences["pf"] == sequences["nn.Module"]
    with nn.parameter_scope("pf"):
        pf_keys = list(nn.get_parameters(grad_only=False))
    ours, _ = nets["ours"]
    assert list(ours.get_parameters(grad_only=False)) == pf_keys
    assert len(pf_keys) == {"resnet18": 102, "mlp": 2 * graph.MLP_DEPTH}[kind]


@pytest.mark.parametrize("model", sorted(fresh_worker.MODELS))
def test_the_fresh_process_models_build_the_pf_graph_with_the_pf_keys(model):
    shape, pf_net, our_net, _ = fresh_worker.MODELS[model]
    x = nn.Variable(shape)
    nn.clear_parameters()
    pf_calls = graph.function_calls(pf_net(x))
    pf_keys = list(nn.get_parameters(grad_only=False))
    nn.clear_parameters()
    net = our_net(models)
    assert graph.function_calls(net(x)) == pf_calls
    assert list(net.get_parameters(grad_only=False)) == pf_keys
    assert len(pf_keys) == {"mlp": 400, "conv-bn": 100, "resnet18": 102}[model]
