"""Recurrent layers: ``PF.rnn``, ``PF.lstm``, ``PF.gru`` and ``PF.lstm_cell``.

The multi-step layers take PF's layouts: the sequence ``x`` is ``(T, B,
input_size)`` and each state (``h``, and ``c`` for the LSTM) is
``(num_layers, num_directions, B, hidden_size)``. PF reads the number of
layers from the state's first axis (its ``num_layers`` argument is not
read): so do these layers when ``num_layers`` is not given, creating their
parameters at the first call; ``num_layers`` given, the state must match it.
"""

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import Layer
from ._signatures import Shapes


def _check_states(layer, states, expected):
    for name, state in zip(layer.inputs[1:], states):
        if state.shape != expected:
            raise layer._size_error(f"the state {name} {state.shape}", expected)


class _RecurrentFamily(Layer):
    """Shared by ``rnn``, ``lstm`` and ``gru``: sizes, layouts, inference.

    Args:
        input_size (int): Size of the sequence's last axis ``I``; ``None``
            (or not given): read from the sequence at the first call.
        hidden_size (int): Size of the hidden state ``H``; ``None`` (or not
            given): read from the state at the first call.
        num_layers (int): Number of layers. Not given: the state's first axis
            at the first call, as PF reads it (PF does not read its own
            ``num_layers``), and the parameters are created then. Given: the
            state must have that many.
    """

    own_args = (("input_size", None), ("hidden_size", None))
    inference_args = {"training": False, "dropout": 0.0}
    shapes = Shapes(
        inputs=(("x", "(T, B, input_size)"), ("h", "(L, directions, B, hidden_size)")),
        outputs=(
            ("y", "(T, B, directions * hidden_size)"),
            ("h_n", "(L, directions, B, hidden_size)"),
        ),
        where=("directions == (2 if bidirectional else 1)",),
        note="``L`` is ``num_layers``, or the state's number of layers when it is not given. "
        "The LSTM takes and returns ``c`` and ``c_n`` of ``h``'s shape too.",
    )
    _layers_read = None  # without num_layers=: the first call's state's

    def _layers(self):
        """The number of layers: given, read from the first call's state, or None."""
        return self.config["num_layers"] if "num_layers" in self._given else self._layers_read

    def _state_shape(self, batch_size, states=()):
        """The states' shape; an unknown hidden size or layer count is the first state's."""
        directions = 2 if self.config["bidirectional"] else 1
        hidden_size, layers = self.config["hidden_size"], self._layers()
        read = states[0].shape if states and states[0].ndim == 4 else (None,) * 4
        return (layers or read[0], directions, batch_size, hidden_size or read[3])

    def _example_inputs(self):
        if None in (self.config["input_size"], self.config["hidden_size"], self._layers()):
            return None
        x = nn.Variable((1, 1, self.config["input_size"]))
        states = tuple(nn.Variable(self._state_shape(1)) for _ in self.inputs[1:])
        return (x,) + states

    def _check_inputs(self, x, *states):
        input_size = self.config["input_size"]
        if x.ndim != 3 or x.shape[2] != (input_size or x.shape[2]):
            raise self._size_error(
                f"the sequence {x.shape} (T, B, input_size)", f"input_size {input_size}"
            )
        expected = self._state_shape(x.shape[1], states)
        if "num_layers" in self._given and states and states[0].shape[:1] != expected[:1]:
            raise self._size_error(
                f"the state {self.inputs[1]} {states[0].shape} has {states[0].shape[0]} "
                "layer(s) (PF would take them from it; leave num_layers out to do so)",
                f"num_layers={expected[0]}",
            )
        _check_states(self, states, expected)
        self._layers_read = expected[0]  # from now on, the layer's


class RNN(_RecurrentFamily):
    """Multi-layer Elman RNN over a sequence; returns ``(y, h_n)`` as PF does.

    In inference (``eval()`` or ``test=True``) it runs with ``training=False``
    and no dropout.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> rnn = nm.RNN(3, 5, num_layers=2, name="rnn")
        >>> y, h_n = rnn(nn.Variable((7, 2, 3)), nn.Variable((2, 1, 2, 5)))
        >>> y.shape, h_n.shape
        ((7, 2, 5), (2, 1, 2, 5))
        >>> list(rnn.get_parameters())
        ['rnn/weight_l0', 'rnn/weight', 'rnn/bias']
    """

    pf_function = PF.rnn
    inputs = ("x", "h")


class LSTM(_RecurrentFamily):
    """Multi-layer LSTM over a sequence; returns ``(y, h_n, c_n)`` as PF does.

    In inference (``eval()`` or ``test=True``) it runs with ``training=False``
    and no dropout.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> lstm = nm.LSTM(3, 5, bidirectional=True, name="lstm")
        >>> state = nn.Variable((1, 2, 4, 5))
        >>> y, h_n, c_n = lstm(nn.Variable((6, 4, 3)), state, state)
        >>> y.shape
        (6, 4, 10)
        >>> lstm.get_parameters()["lstm/weight_l0"].shape
        (2, 4, 5, 8)
    """

    pf_function = PF.lstm
    inputs = ("x", "h", "c")
    shapes = _RecurrentFamily.shapes._replace(
        inputs=_RecurrentFamily.shapes.inputs + (("c", "(L, directions, B, hidden_size)"),),
        outputs=_RecurrentFamily.shapes.outputs + (("c_n", "(L, directions, B, hidden_size)"),),
    )


class GRU(_RecurrentFamily):
    """Multi-layer GRU over a sequence; returns ``(y, h_n)`` as PF does.

    In inference (``eval()`` or ``test=True``) it runs with ``training=False``
    and no dropout.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> gru = nm.GRU(3, 5, name="gru")
        >>> y, h_n = gru(nn.Variable((6, 4, 3)), nn.Variable((1, 1, 4, 5)))
        >>> y.shape
        (6, 4, 5)
    """

    pf_function = PF.gru
    inputs = ("x", "h")


class LSTMCell(Layer):
    """One LSTM step: ``h_t, c_t = cell(x, h, c)`` as ``PF.lstm_cell`` computes it.

    Unlike ``PF.LSTMCell`` (which keeps the state), this module is stateless
    like the PF function: the caller carries ``h`` and ``c``.

    Args:
        input_size (int): Size of ``x``'s second axis (``x`` is ``(B,
            input_size)``); ``None`` (or not given): read from ``x`` at the first
            call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> cell = nm.LSTMCell(3, 5, name="cell")
        >>> h = c = nn.Variable((2, 5))
        >>> h, c = cell(nn.Variable((2, 3)), h, c)
        >>> h.shape
        (2, 5)
        >>> {k: v.shape for k, v in cell.get_parameters().items()}
        {'lstm/affine/W': (8, 4, 5), 'lstm/affine/b': (4, 5)}
    """

    pf_function = PF.lstm_cell
    inputs = ("x", "h", "c")
    own_args = (("input_size", None),)
    shapes = Shapes(
        inputs=(("x", "(B, input_size)"), ("h", "(B, state_size)"), ("c", "(B, state_size)")),
        outputs=(("h_t", "(B, state_size)"), ("c_t", "(B, state_size)")),
    )

    def _example_inputs(self):
        if self.config["input_size"] is None:
            return None
        state = nn.Variable((1, self.config["state_size"]))
        return nn.Variable((1, self.config["input_size"])), state, state

    def _check_inputs(self, x, *states):
        if x.ndim != 2 or x.shape[1] != (self.config["input_size"] or x.shape[1]):
            expected = (x.shape[0], self.config["input_size"])
            raise self._size_error(f"the input {x.shape}", expected)
        _check_states(self, states, (x.shape[0], self.config["state_size"]))
