"""Constructor arguments checked by name, one table for every layer class.

NNabla's C++ functions trust their arguments: a size of 0, a stride of 0 or a
group count that does not divide the channels kills the interpreter (SIGFPE,
SIGSEGV) instead of raising. Every layer therefore checks its arguments here,
by the argument's name, before PF ever sees them; the relations between
arguments (``group`` divides the channels) are checked by the families.
"""

import inspect
import numbers

import numpy as np


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, bool)


def _is_sequence(value):
    return isinstance(value, (tuple, list))


class Rule:
    """A test of one argument's value and the words that say what it expects."""

    def __init__(self, test, expected):
        self.test = test
        self.expected = expected

    def check(self, value):
        """None when ``value`` passes; else ``(error type, what is expected)``."""
        try:
            ok = self.test(value)
        except TypeError:
            ok = False
        if ok:
            return None
        # The wrong kind of value is a TypeError; a value of the right kind out of range a ValueError.
        kind_ok = _is_number(value) or (
            _is_sequence(value) and all(_is_number(item) for item in value)
        )
        return (ValueError if kind_ok else TypeError), self.expected


def _ints(value, low):
    return _is_sequence(value) and len(value) > 0 and all(_is_int(v) and v >= low for v in value)


POSITIVE_INT = Rule(lambda v: _is_int(v) and v > 0, "a positive int")
NON_NEGATIVE_INT = Rule(lambda v: _is_int(v) and v >= 0, "a non-negative int")
INT = Rule(_is_int, "an int")
SIZES = Rule(
    lambda v: (_is_int(v) and v > 0) or _ints(v, 1), "a positive int or a tuple of positive ints"
)
POSITIVE_INTS = Rule(
    lambda v: (_is_int(v) and v > 0) or _ints(v, 1), "a tuple of positive ints (one per axis)"
)
NON_NEGATIVE_INTS = Rule(
    lambda v: (_is_int(v) and v >= 0) or _ints(v, 0), "a tuple of non-negative ints (one per axis)"
)
AXES = Rule(lambda v: _is_int(v) or (_is_sequence(v) and all(map(_is_int, v))), "an int or ints")
INTS = Rule(lambda v: _is_sequence(v) and len(v) > 0 and all(map(_is_int, v)), "a list of ints")
NUMBER = Rule(_is_number, "a number")
POSITIVE_NUMBER = Rule(lambda v: _is_number(v) and v > 0, "a positive number")
PROBABILITY = Rule(lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")


def optional(rule):
    return Rule(lambda v: v is None or rule.test(v), rule.expected + ", or None")


#: PF's arguments by name. A PF default of None allows None (see ``rule_for``).
ARGUMENT_RULES = {
    "outmaps": POSITIVE_INT,
    "n_outmaps": SIZES,
    "kernel": POSITIVE_INTS,
    "stride": POSITIVE_INTS,
    "dilation": POSITIVE_INTS,
    "pad": NON_NEGATIVE_INTS,
    "output_padding": NON_NEGATIVE_INTS,
    "group": POSITIVE_INT,
    "deformable_group": POSITIVE_INT,
    "multiplier": POSITIVE_INT,
    "divisor": POSITIVE_INT,
    "num_groups": POSITIVE_INT,
    "num_heads": POSITIVE_INT,
    "state_size": POSITIVE_INT,
    "num_layers": POSITIVE_INT,
    "num_encoder_layers": POSITIVE_INT,
    "num_decoder_layers": POSITIVE_INT,
    "n_inputs": POSITIVE_INT,
    "n_features": POSITIVE_INT,
    "embed_dim": POSITIVE_INT,
    "k_embed_dim": POSITIVE_INT,
    "v_embed_dim": POSITIVE_INT,
    "out_dim": POSITIVE_INT,
    "dim_feedforward": POSITIVE_INT,
    "r": POSITIVE_INT,
    "uv_factor": POSITIVE_INT,
    "itr": POSITIVE_INT,
    "max_iter": POSITIVE_INT,
    "n_dims": POSITIVE_INT,
    "base_axis": NON_NEGATIVE_INT,
    "channel_axis": INT,
    "batch_axis": AXES,
    "axes": INTS,
    "dim": INT,
    "eps": NUMBER,
    "decay_rate": NUMBER,
    "decay": NUMBER,
    "dropout": PROBABILITY,
    "n_w": POSITIVE_INT,
    "n_b": POSITIVE_INT,
    "m_w": INT,
    "m_b": INT,
    "delta_w": POSITIVE_NUMBER,
    "delta_b": POSITIVE_NUMBER,
    "ql_min": NUMBER,
    "ql_max": NUMBER,
    "num_bits": POSITIVE_INT,
}

#: Input sizes that may be tuples; the others are one positive int. None reads
#: the size from the first input (the layer is then lazy).
_SIZE_TUPLES = {"n_inmaps", "n_features", "normalized_shape", "sample_shape"}


def rule_for(name, default, is_size):
    """The rule for the argument ``name`` (with PF default ``default``), or None."""
    if is_size:
        return optional(SIZES if name in _SIZE_TUPLES else POSITIVE_INT)
    rule = ARGUMENT_RULES.get(name)
    if rule is None:
        return None
    if default is None:
        return optional(rule)
    if default is not inspect.Parameter.empty and rule.check(default) is not None:
        return None  # the name means something else here (sync batch norm's group="world")
    return rule


def check_arguments(config, rules, who):
    """Raises a TypeError/ValueError naming ``who`` and the first bad argument."""
    for name, rule in rules.items():
        value = config[name]
        problem = rule.check(value)
        if problem is not None:
            error, expected = problem
            raise error(f"{who}: {name}={value!r}; expected {expected}")
