"""Renaming the keys of a parameter file: prefixes, regex maps and known layouts.

:class:`KeyMapping` is what ``nnabla-modules convert`` applies, in its
documented order (``--select``, ``--layout``, ``--strip-prefix``, each
``--map``, ``--add-prefix``, then ``--to-layout``); :func:`convert_entries` applies it to an opened
file without reading any value, so :func:`nnabla_modules.files.write_parameters`
then copies the file one tensor at a time.

Example:

    >>> import numpy as np
    >>> from nnabla_modules import files
    >>> from nnabla_modules.convert import KeyMapping, convert_entries
    >>> files.write_parameters("old.h5", {"net/fc/affine/W": np.ones((2, 3), np.float32)})
    >>> with files.open_parameters("old.h5") as stored:
    ...     entries, _ = convert_entries(stored, KeyMapping(strip_prefix="net"))
    ...     files.write_parameters("new.h5", [(e.target, e.param) for e in entries])
    >>> list(files.read_parameters("new.h5"))
    ['fc/affine/W']
"""

import re
from collections import OrderedDict

import numpy as np

from . import files
from .core._naming import without_module_marks

__all__ = [
    "ConversionError",
    "KeyMapping",
    "LAYOUTS",
    "EXPERIMENTAL_KINDS",
    "Converted",
    "convert_entries",
    "with_module_marks",
]


class ConversionError(ValueError):
    """A renaming that cannot be applied: a bad pattern, a clash, an unknown layer."""


class KeyMapping:
    """The renaming ``convert`` applies, in its documented order; :meth:`rename` does one key.

    Args:
        select (list of str): Regexes; only keys matching one are kept (all when empty).
        layout (str): ``plain``, ``nn-module`` or ``experimental``.
        strip_prefix (str): A scope prefix to remove (``a/b`` removes ``a/b/``).
        maps (list of (str, str)): ``(pattern, replacement)`` for ``re.sub``.
        add_prefix (str): A scope prefix to add.
        layers (list of (str, str)): ``(scope regex, kind)`` for the experimental layout.
        transpose_deconv (str): ``auto``, ``always`` or ``never``.
        to_layout (str): The layout written: ``plain``, or ``nn-module`` (NNabla's
            ``nn.Module`` files: module levels marked with ``@``; see :func:`with_module_marks`).
        module_scopes (list of str): ``nn-module`` output: regexes (``re.fullmatch``)
            of the scopes that are modules; none: every scope above the layers' own.

    Example:

        >>> mapping = KeyMapping(strip_prefix="net", maps=[("^fc", "head")], add_prefix="m")
        >>> mapping.rename("net/fc/affine/W")
        'm/head/affine/W'
    """

    def __init__(
        self,
        select=(),
        layout="plain",
        strip_prefix=None,
        maps=(),
        add_prefix=None,
        layers=(),
        transpose_deconv="auto",
        to_layout="plain",
        module_scopes=(),
    ):
        self.select = [_compile(p, "--select") for p in select]
        self.layout = layout
        self.strip_prefix = _scope_prefix(strip_prefix, "--strip-prefix")
        self.maps = [(_compile(old, "--map"), new) for old, new in maps]
        self.add_prefix = _scope_prefix(add_prefix, "--add-prefix")
        self.layers = [(_compile(scope, "--layer"), kind) for scope, kind in layers]
        self.transpose_deconv = transpose_deconv
        self.map_hits = [0] * len(self.maps)
        self.to_layout = to_layout
        self.module_scopes = [_compile(p, "--module-scope") for p in module_scopes]

    def selected(self, key):
        """True when ``key`` passes the ``select`` patterns (all keys pass without any).

        Args:
            key (str): A key of the input file.
        """
        return not self.select or any(p.search(key) for p in self.select)

    def rename(self, key):
        """The new key of ``key`` after the prefixes and maps (the layout is applied before)."""
        if self.strip_prefix:
            if not key.startswith(self.strip_prefix):
                raise ConversionError(
                    f"--strip-prefix {self.strip_prefix[:-1]!r}: the key {key!r} does not start "
                    f"with {self.strip_prefix!r} (pick keys with --select, or use --map)"
                )
            key = key[len(self.strip_prefix) :]
        for index, (pattern, replacement) in enumerate(self.maps):
            new = pattern.sub(replacement, key)
            self.map_hits[index] += new != key
            key = new
        if self.add_prefix:
            key = self.add_prefix + key
        if not key or key.endswith("/") or "//" in key:
            raise ConversionError(f"the renaming gives the empty or malformed key {key!r}")
        if self.to_layout == "nn-module":
            key = with_module_marks(key, self.module_scopes)
        return key


def with_module_marks(key, module_scopes=()):
    """``a/b/conv/W`` -> ``@a/@b/conv/W``: the layout of NNabla ``nn.Module`` files.

    ``nn.Module`` marks each level that is a module (an attribute holding an
    ``nn.Module``) with ``@``; the PF code inside it keeps its plain scopes
    (``conv``, a ``name=``). With ``module_scopes`` (compiled regexes), the
    scopes whose path (unmarked, ``a/b``) one of them fully matches are marked;
    without, every scope but the last: the layer's own (``conv``, ``bn``), as
    for a module tree whose layers are PF calls without ``name=``.

    Args:
        key (str): A key, with or without ``@`` marks.
        module_scopes (list of re.Pattern): The scopes that are modules.

    Returns:
        str: The key in the ``nn.Module`` layout.

    Example:

        >>> with_module_marks("a/b/conv/W")
        '@a/@b/conv/W'
        >>> with_module_marks("a/c1/conv/W", [re.compile("a")])
        '@a/c1/conv/W'
    """
    levels = without_module_marks(key).split("/")
    if not module_scopes:  # no path per level: a key may nest thousands deep
        return "/".join(["@" + level for level in levels[:-2]] + levels[-2:])
    marked = []
    for depth, level in enumerate(levels[:-1], 1):
        path = "/".join(levels[:depth])
        module = any(pattern.fullmatch(path) for pattern in module_scopes)
        marked.append("@" + level if module else level)
    return "/".join(marked + levels[-1:])


def _compile(pattern, option):
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ConversionError(f"{option} {pattern!r}: not a regular expression ({error})") from None


def _scope_prefix(prefix, option):
    if prefix is None:
        return None
    prefix = prefix.strip("/")
    if not prefix:
        raise ConversionError(f"{option}: the prefix is empty")
    return prefix + "/"


# --- convert: known layouts -------------------------------------------------------------

#: ``nnabla.experimental.parametric_function_class`` attribute names per layer kind.
_EXPERIMENTAL_LEAVES = {
    "conv": {"W", "b"},
    "deconv": {"W", "b"},
    "affine": {"W", "b"},
    "embed": {"W"},
    "bn": {"beta", "gamma", "mean", "var"},
}
#: The layer kinds of the experimental layout (``--layer SCOPE=KIND``).
EXPERIMENTAL_KINDS = tuple(_EXPERIMENTAL_LEAVES)


def _plain_layout(stored, mapping):
    return [Converted(key, key, param) for key, param in stored.items()], {}


def _nn_module_layout(stored, mapping):
    """NNabla's ``nn.Module`` files: ``@a/@b/conv/W`` -> ``a/b/conv/W``."""
    converted = []
    for key, param in stored.items():
        converted.append(Converted(key, without_module_marks(key), param))
    return converted, {}


def _experimental_layout(stored, mapping):
    """The experimental classes' files: ``conv0/W`` -> ``conv0/conv/W`` (see :func:`_transposes`).

    Returns the converted entries and ``{scope: kind}`` of the layers found.
    """
    scopes = OrderedDict()
    for key, param in stored.items():
        scope, _, leaf = key.strip("/").rpartition("/")
        scopes.setdefault(scope, OrderedDict())[leaf] = (key, param)
    converted, kinds = [], OrderedDict()
    for scope, leaves in scopes.items():
        kind = kinds[scope] = _layer_kind(scope, leaves, mapping)
        for leaf, (key, param) in leaves.items():
            new = f"{scope}/{kind}/{leaf}" if scope else f"{kind}/{leaf}"
            transposed = kind == "deconv" and leaf == "W" and _transposes(param, mapping)
            if transposed:
                param = _swapped(param, new)
            converted.append(Converted(key, new, param, transposed))
    return converted, kinds


def _layer_kind(scope, leaves, mapping):
    given = [kind for pattern, kind in mapping.layers if pattern.fullmatch(scope)]
    kind = given[0] if given else _guess_kind(scope, leaves)
    unknown = set(leaves) - _EXPERIMENTAL_LEAVES[kind]
    if unknown:
        raise ConversionError(
            f"--layout experimental: the {kind} layer {scope or '(root)'!r} has the keys "
            f"{sorted(unknown)}, which no experimental {kind} class has"
        )
    return kind


def _guess_kind(scope, leaves):
    name = scope.rpartition("/")[2].lower()
    if set(leaves) <= _EXPERIMENTAL_LEAVES["bn"]:
        return "bn"
    weight = leaves.get("W")
    if weight is not None and len(weight[1].shape) >= 3:
        return "deconv" if "deconv" in name else "conv"
    if weight is not None and len(weight[1].shape) == 2:
        return "embed" if "b" not in leaves and "embed" in name else "affine"
    raise ConversionError(
        f"--layout experimental: cannot tell the layer of {scope or '(root)'!r} "
        f"(keys {sorted(leaves)}); give --layer '{re.escape(scope)}=KIND'"
    )


def _transposes(param, mapping):
    if mapping.transpose_deconv == "auto":
        # A square weight is what the experimental Deconvolution ran with: it hands its
        # (outmaps, inmaps, ...) array to F.deconvolution, which reads it as PF's
        # (inmaps, outmaps, ...), so it computes PF's function as it stands. A
        # non-square one never ran (F.deconvolution refuses it); its axes are swapped.
        return param.shape[0] != param.shape[1]
    return mapping.transpose_deconv == "always"


def _swapped(param, name):
    shape = (param.shape[1], param.shape[0]) + param.shape[2:]

    def read_into(out):
        out[...] = np.swapaxes(param.read(), 0, 1)

    return files.StoredParameter(name, shape, param.dtype, param.need_grad, read_into)


LAYOUTS = {
    "plain": _plain_layout,
    "nn-module": _nn_module_layout,
    "experimental": _experimental_layout,
}


class Converted:
    """One renamed parameter: ``source`` and ``target`` keys, ``param``, ``transposed``."""

    __slots__ = ("source", "target", "param", "transposed")

    def __init__(self, source, target, param, transposed=False):
        self.source, self.target, self.param = source, target, param
        self.transposed = transposed


def convert_entries(stored, mapping):
    """Applies ``mapping`` to an opened file; returns ``(entries, {scope: layer kind})``.

    Args:
        stored (mapping): key -> :class:`~nnabla_modules.files.StoredParameter` (an opened file).
        mapping (KeyMapping): The renaming.

    Returns:
        tuple: ``([Converted, ...], {scope: layer kind})``; the kinds only for
        the experimental layout.

    Raises:
        ConversionError: Nothing selected, or two keys renamed to one.
    """
    selected = OrderedDict((k, p) for k, p in stored.items() if mapping.selected(k))
    if not selected:
        raise ConversionError("no key selected (check --select)")
    entries, kinds = LAYOUTS[mapping.layout](selected, mapping)
    for entry in entries:
        entry.target = mapping.rename(entry.target)
    _check_unique(entries)
    return entries, kinds


def _check_unique(entries):
    sources = OrderedDict()
    for entry in entries:
        sources.setdefault(entry.target, []).append(entry.source)
    clashes = [f"{', '.join(s)} -> {t}" for t, s in sources.items() if len(s) > 1]
    if clashes:
        raise ConversionError("two keys would get one name: " + "; ".join(clashes))
