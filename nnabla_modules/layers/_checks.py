"""Constructor arguments checked by name, one table for every layer class.

NNabla's C++ functions trust their arguments: a size of 0, a stride of 0 or a
group count that does not divide the channels kills the interpreter (SIGFPE,
SIGSEGV) instead of raising. Every layer therefore checks its arguments here,
by the argument's name, before PF ever sees them; the relations between
arguments (``group`` divides the channels) are checked by the families.
"""

import inspect
import numbers

import nnabla.initializer as I
import numpy as np


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, bool)


def _is_sequence(value):
    return isinstance(value, (tuple, list))


def _numeric(value):
    return _is_number(value) or (_is_sequence(value) and all(map(_is_number, value)))


def _never(value):
    return False


class Rule:
    """A test of one argument's value and the words that say what it expects.

    ``right_kind(value)``: the value is of the right kind, merely out of range
    (a ValueError); otherwise it is of the wrong kind (a TypeError).
    ``annotation``: the type the layer stubs give the argument, an alias of
    ``_types.py`` (every value the test accepts is of that type).
    """

    def __init__(self, test, expected, annotation, right_kind=_numeric):
        self.test = test
        self.expected = expected
        self.annotation = annotation
        self.right_kind = right_kind

    def check(self, value):
        """None when ``value`` passes; else ``(error type, what is expected)``."""
        try:
            ok = self.test(value)
        except TypeError:
            ok = False
        if ok:
            return None
        return (ValueError if self.right_kind(value) else TypeError), self.expected


def _ints(value, low):
    return _is_sequence(value) and len(value) > 0 and all(_is_int(v) and v >= low for v in value)


POSITIVE_INT = Rule(lambda v: _is_int(v) and v > 0, "a positive int", "Int")
NON_NEGATIVE_INT = Rule(lambda v: _is_int(v) and v >= 0, "a non-negative int", "Int")
INT = Rule(_is_int, "an int", "Int")
SIZES = Rule(
    lambda v: (_is_int(v) and v > 0) or _ints(v, 1),
    "a positive int or a tuple of positive ints",
    "Ints",
)
POSITIVE_INTS = Rule(
    lambda v: (_is_int(v) and v > 0) or _ints(v, 1),
    "a tuple of positive ints (one per axis)",
    "Ints",
)
NON_NEGATIVE_INTS = Rule(
    lambda v: (_is_int(v) and v >= 0) or _ints(v, 0),
    "a tuple of non-negative ints (one per axis)",
    "Ints",
)
#: The per-axis arguments of a layer that takes any number of axes: no int stands for all.
PER_AXIS = {
    POSITIVE_INTS: Rule(
        lambda v: _ints(v, 1),
        "a tuple of positive ints, one per spatial axis (a class of any number of axes "
        "takes no int)",
        "Sequence[Int]",
    ),
    NON_NEGATIVE_INTS: Rule(
        lambda v: _ints(v, 0),
        "a tuple of non-negative ints, one per spatial axis (a class of any number of axes "
        "takes no int)",
        "Sequence[Int]",
    ),
}
AXES = Rule(
    lambda v: _is_int(v) or (_is_sequence(v) and all(map(_is_int, v))), "an int or ints", "Ints"
)
INTS = Rule(
    lambda v: _is_sequence(v) and len(v) > 0 and all(map(_is_int, v)),
    "a list of ints",
    "Sequence[Int]",
)
NUMBER = Rule(_is_number, "a number", "Number")
POSITIVE_NUMBER = Rule(lambda v: _is_number(v) and v > 0, "a positive number", "Number")
PROBABILITY = Rule(lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)", "Number")
FRACTION = Rule(lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]", "Number")
NUMBER_OR_ARRAY = Rule(
    lambda v: _is_number(v) or isinstance(v, np.ndarray),
    "a number or an array",
    "Number | np.ndarray",
)
BOOL = Rule(lambda v: isinstance(v, (bool, np.bool_)), "True or False", "Bool", _never)
RANDOM_STATE = Rule(
    lambda v: isinstance(v, np.random.RandomState),
    "a numpy.random.RandomState",
    "np.random.RandomState",
    _never,
)
INITIALIZER = Rule(
    lambda v: isinstance(v, (I.BaseInitializer, np.ndarray)) or callable(v),
    "an nnabla.initializer initializer (or a function of the shape) or a numpy.ndarray",
    "Initializer",
    _never,
)
INITIALIZERS = Rule(
    lambda v: isinstance(v, dict) and all(INITIALIZER.test(item) for item in v.values()),
    "a dict of initializers (nnabla.initializer or numpy.ndarray) by parameter name",
    "Initializers",
    _never,
)


def optional(rule):
    return Rule(
        lambda v: v is None or rule.test(v),
        rule.expected + ", or None",
        rule.annotation + " | None",
        rule.right_kind,
    )


def _choice(*choices):
    return Rule(
        lambda v: v in choices, " or ".join(map(repr, choices)), "str", lambda v: isinstance(v, str)
    )


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
    "dim": NON_NEGATIVE_INT,
    "eps": POSITIVE_NUMBER,
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
    # "function.argument": where one function's argument differs (what NNabla 1.39 implements)
    "fused_batch_normalization.nonlinearity": _choice("relu"),
    "rnn.nonlinearity": _choice("tanh", "relu"),
}

#: Input sizes that may be tuples; the others are one positive int. None reads
#: the size from the first input (the layer is then lazy).
_SIZE_TUPLES = {"n_inmaps", "n_features", "normalized_shape", "sample_shape"}


def _rule_by_kind(name, default):
    """Rules for families of arguments: generators, initializers, flags, quantization levels."""
    if name == "rng":
        return RANDOM_STATE
    if name == "param_init":
        return INITIALIZERS
    if name.endswith("_init") or name == "initializer":
        return INITIALIZER
    if name.startswith("ql_"):
        return NUMBER_OR_ARRAY
    if name.startswith("rate_"):
        return FRACTION
    if isinstance(default, bool):
        return BOOL
    return None


def rule_for(function, name, default, is_size, per_axis=False):
    """The rule for ``function``'s argument ``name`` (with PF default ``default``), or None.

    ``per_axis``: the argument takes one value per axis, and no single int
    (the class takes any number of axes).
    """
    if is_size:
        return optional(SIZES if name in _SIZE_TUPLES else POSITIVE_INT)
    rule = (
        ARGUMENT_RULES.get(f"{function}.{name}")
        or ARGUMENT_RULES.get(name)
        or _rule_by_kind(name, default)
    )
    if rule is None:
        return None
    if per_axis:
        rule = PER_AXIS.get(rule, rule)
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
