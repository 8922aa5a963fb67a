"""The benchmark's four ResNet-18s and MLPs build one graph, so their timings compare."""

import nnabla as nn
import pytest

from benchmarks import graph


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
