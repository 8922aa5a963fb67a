"""The command line: inspect, diff and convert NNabla parameter files.

Run it as ``nnabla-modules`` or ``python -m nnabla_modules``::

    nnabla-modules inspect model.h5                 # keys, shapes, dtypes, counts per scope
    nnabla-modules diff old.h5 new.h5               # exit status 0 only when equal
    nnabla-modules convert old.h5 new.h5 --strip-prefix res_unit
    nnabla-modules convert exp.h5 pf.h5 --layout experimental
    nnabla-modules convert mod.h5 pf.h5 --layout nn-module

Files are read and written by :mod:`nnabla_modules.io`: ``.h5``, ``.protobuf``,
``.nntxt`` and ``.nnp`` are read, ``.h5`` and ``.protobuf`` written (atomically).
Every command takes ``--json`` for machine output. Exit status: 0 success (for
``diff``: equal), 1 ``diff`` found differences, 2 an error.
"""

import argparse
import json
import os
import re
import sys
from collections import OrderedDict

import numpy as np

from . import __version__, io

__all__ = ["main", "build_parser", "KeyMapping", "CliError"]

EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    """An error the command line reports in one line, with exit status 2."""


def main(argv=None):
    """Runs the command line; returns the exit status.

    Args:
        argv (list of str): The arguments (default: ``sys.argv[1:]``).

    Example:

        >>> main(["--version"])  # doctest: +SKIP
        nnabla-modules 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CliError, io.ParameterFileError, ValueError, OSError) as error:
        print(f"nnabla-modules {args.command}: error: {_message(error)}", file=sys.stderr)
        return EXIT_ERROR


def _message(error):
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or error}: {error.filename!r}"
    return str(error)


def build_parser():
    """The ``argparse`` parser of the three commands."""
    parser = argparse.ArgumentParser(
        prog="nnabla-modules",
        description="Inspect, compare and convert NNabla parameter files "
        "(.h5, .protobuf, .nntxt, .nnp).",
    )
    parser.add_argument("--version", action="version", version=f"nnabla-modules {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_inspect(commands)
    _add_diff(commands)
    _add_convert(commands)
    return parser


def _add_inspect(commands):
    p = commands.add_parser(
        "inspect",
        help="the tree of keys with shapes, dtypes, need_grad and counts per scope",
        description="Prints the tree of keys of a parameter file with shapes, dtypes, "
        "need_grad and parameter counts per scope.",
    )
    p.add_argument("file", help="a .h5, .protobuf, .nntxt or .nnp file")
    p.add_argument("--depth", type=int, metavar="N", help="show scopes down to depth N only")
    p.add_argument("--json", action="store_true", help="machine output")
    p.set_defaults(run=run_inspect)


def _add_diff(commands):
    p = commands.add_parser(
        "diff",
        help="keys only in A or B, shape mismatches, largest value difference",
        description="Compares two parameter files: keys only in A, only in B, shape, dtype "
        "and need_grad mismatches, and the largest absolute difference of shared values. "
        "Exit status 0 only when they are equal, 1 when they differ, 2 on an error.",
    )
    p.add_argument("a", metavar="A", help="the first file")
    p.add_argument("b", metavar="B", help="the second file")
    p.add_argument(
        "--atol", type=float, default=0.0, help="values this close count as equal (default 0)"
    )
    p.add_argument("--json", action="store_true", help="machine output")
    p.set_defaults(run=run_diff)


def _add_convert(commands):
    p = commands.add_parser(
        "convert",
        help="rename keys (prefixes, regex maps, known layouts) into a new file",
        description="Writes IN's parameters to OUT under new keys. In this order: --select "
        "picks keys, --layout translates a known layout, --strip-prefix, --map (each in "
        "turn), --add-prefix. OUT is written atomically; IN is never overwritten.",
    )
    p.add_argument("input", metavar="IN", help="the file to read")
    p.add_argument("output", metavar="OUT", help="the file to write (.h5 or .protobuf)")
    p.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="REGEX",
        help="convert only the keys matching REGEX (re.search; repeatable)",
    )
    p.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="plain",
        help="the layout of IN: plain (default), nn-module (NNabla's nn.Module files: "
        "@a/conv/W -> a/conv/W), experimental (nnabla.experimental."
        "parametric_function_class files: conv0/W -> conv0/conv/W)",
    )
    p.add_argument(
        "--layer",
        action="append",
        default=[],
        metavar="SCOPE=KIND",
        help="experimental layout: the layer kind (conv, deconv, affine, bn, embed) of the "
        "scopes matching the regex SCOPE (re.fullmatch); repeatable",
    )
    p.add_argument(
        "--transpose-deconv",
        choices=("auto", "always", "never"),
        default="auto",
        help="experimental layout: swap the first two axes of deconvolution weights "
        "(auto: only where they differ; see the docs)",
    )
    p.add_argument("--strip-prefix", metavar="P", help="remove the scope prefix P from every key")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="re.sub(OLD, NEW, key) on every key, in the order given (split at the last =)",
    )
    p.add_argument("--add-prefix", metavar="P", help="put every key under the scope P")
    p.add_argument("--dry-run", action="store_true", help="show the renaming, write nothing")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--json", action="store_true", help="machine output")
    p.set_defaults(run=run_convert)


# --- inspect ------------------------------------------------------------------------


def run_inspect(args):
    with io.open_parameters(args.file) as stored:
        info = _file_info(args.file, stored)
        tree = _scope_tree(stored)
        if args.json:
            info["parameters"] = [_parameter_json(p) for p in stored.values()]
            info["scopes"] = OrderedDict(_scope_counts(tree))
            _print_json(info)
        else:
            print(_file_line(info))
            print()
            print("\n".join(_table(_INSPECT_COLUMNS, _tree_rows(tree, args.depth))))
    return EXIT_OK


_INSPECT_COLUMNS = (
    ("Key", "<"),
    ("Shape", "<"),
    ("Dtype", "<"),
    ("need_grad", "<"),
    ("Params", ">"),
)


def _file_info(path, stored):
    sizes = [p.size for p in stored.values()]
    return OrderedDict(
        file=str(path),
        format=io.file_format(path),
        count=len(stored),
        total=sum(sizes),
        trainable=sum(p.size for p in stored.values() if p.need_grad),
    )


def _file_line(info):
    return (
        f"{info['file']}: {info['format']}, {info['count']} parameters, "
        f"{info['total']:,} values ({info['trainable']:,} with need_grad)"
    )


def _parameter_json(param):
    return OrderedDict(
        key=param.name,
        shape=list(param.shape),
        dtype=str(param.dtype),
        need_grad=param.need_grad,
        size=param.size,
    )


def _scope_tree(stored):
    """Nested OrderedDicts in first-appearance order: scope name + '/' -> subtree, leaf -> param."""
    root = OrderedDict()
    for key, param in stored.items():
        *scopes, leaf = key.split("/")
        node = root
        for scope in scopes:
            node = node.setdefault(scope + "/", OrderedDict())
        node[leaf] = param
    return root


def _tree_size(node):
    return sum(_tree_size(v) if isinstance(v, dict) else v.size for v in node.values())


def _scope_counts(node, path=""):
    """Yields ``(scope path, parameter count)`` for every scope, depth first."""
    for name, value in node.items():
        if isinstance(value, dict):
            scope = path + name[:-1]
            yield scope, _tree_size(value)
            yield from _scope_counts(value, scope + "/")


def _tree_rows(node, max_depth, depth=0):
    for name, value in node.items():
        indent = "  " * depth
        if isinstance(value, dict):
            yield [indent + name, "", "", "", f"{_tree_size(value):,}"]
            if max_depth is None or depth + 1 < max_depth:
                yield from _tree_rows(value, max_depth, depth + 1)
        elif max_depth is None or depth < max_depth:
            yield [
                indent + name,
                _shape(value.shape),
                str(value.dtype),
                str(value.need_grad),
                f"{value.size:,}",
            ]


# --- diff ---------------------------------------------------------------------------


def run_diff(args):
    with io.open_parameters(args.a) as a, io.open_parameters(args.b) as b:
        report = compare_files(a, b, args.atol)
    report["a"], report["b"] = str(args.a), str(args.b)
    if args.json:
        _print_json(report)
    else:
        print("\n".join(_diff_lines(report, len(a), len(b))))
    return EXIT_OK if report["equal"] else EXIT_DIFFERENT


def compare_files(a, b, atol=0.0):
    """Compares two opened files (``io.open_parameters`` results); returns a JSON-able dict.

    Args:
        a (mapping): key -> ``io.StoredParameter`` of the first file.
        b (mapping): the same of the second.
        atol (float): Values this close count as equal.
    """
    shared = [k for k in a if k in b]
    same_shape = [k for k in shared if a[k].shape == b[k].shape]
    report = OrderedDict(
        only_in_a=[_key_json(a[k]) for k in a if k not in b],
        only_in_b=[_key_json(b[k]) for k in b if k not in a],
        shape_mismatches=[
            _pair_json(k, list(a[k].shape), list(b[k].shape))
            for k in shared
            if a[k].shape != b[k].shape
        ],
        dtype_mismatches=[
            _pair_json(k, str(a[k].dtype), str(b[k].dtype))
            for k in same_shape
            if a[k].dtype != b[k].dtype
        ],
        need_grad_mismatches=[
            _pair_json(k, a[k].need_grad, b[k].need_grad)
            for k in shared
            if a[k].need_grad != b[k].need_grad
        ],
    )
    differences = [(k, _max_difference(a[k], b[k])) for k in same_shape]
    report["compared"] = len(same_shape)
    report["value_differences"] = [
        OrderedDict(key=k, max_abs_diff=d) for k, d in differences if not d <= atol
    ]
    largest = max(differences, key=lambda kd: _sort_value(kd[1]), default=None)
    report["largest_abs_diff"] = (
        OrderedDict(key=largest[0], value=largest[1]) if largest is not None else None
    )
    kinds = (
        "only_in_a",
        "only_in_b",
        "shape_mismatches",
        "dtype_mismatches",
        "need_grad_mismatches",
        "value_differences",
    )
    report["equal"] = not any(report[kind] for kind in kinds)
    return report


def _key_json(param):
    return OrderedDict(key=param.name, shape=list(param.shape))


def _pair_json(key, a, b):
    return OrderedDict(key=key, a=a, b=b)


def _max_difference(a, b):
    """The largest absolute difference (float; inf or nan where one side is not finite)."""
    x, y = a.read().astype(np.float64), b.read().astype(np.float64)
    if x.size == 0:
        return 0.0
    both_nan = np.isnan(x) & np.isnan(y)
    same_inf = np.isinf(x) & (x == y)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan | same_inf, 0.0, np.abs(x - y))
    return float(np.nan if np.isnan(diff).any() else diff.max())


def _sort_value(value):
    return np.inf if np.isnan(value) else value


def _diff_lines(report, count_a, count_b):
    lines = [f"A: {report['a']} ({count_a} parameters)", f"B: {report['b']} ({count_b} parameters)"]
    sections = (
        ("Only in A", report["only_in_a"], ("Key", "Shape"), _key_cells),
        ("Only in B", report["only_in_b"], ("Key", "Shape"), _key_cells),
        ("Shape mismatches", report["shape_mismatches"], ("Key", "A", "B"), _pair_cells),
        ("Dtype mismatches", report["dtype_mismatches"], ("Key", "A", "B"), _pair_cells),
        ("need_grad mismatches", report["need_grad_mismatches"], ("Key", "A", "B"), _pair_cells),
    )
    for title, entries, header, cells in sections:
        if entries:
            lines += ["", f"{title} ({len(entries)}):"]
            lines += ["  " + line for line in _table(_left(header), [cells(e) for e in entries])]
    values = report["value_differences"]
    if values:
        lines += ["", f"Values differ ({len(values)} of {report['compared']} compared):"]
        rows = [[e["key"], _number(e["max_abs_diff"])] for e in values]
        lines += ["  " + line for line in _table((("Key", "<"), ("Max |diff|", ">")), rows)]
    largest = report["largest_abs_diff"]
    if largest is not None:
        lines += [
            "",
            "Largest absolute difference of shared values: "
            f"{_number(largest['value'])} ({largest['key']})",
        ]
    hint = _renaming_hint(report)
    if hint:
        lines += ["", f"Hint: {hint}"]
    lines += ["", "Equal." if report["equal"] else "Different."]
    return lines


def _renaming_hint(report):
    """A ``convert`` option when the keys only in A and only in B differ by a known renaming."""
    only_a = [e["key"] for e in report["only_in_a"]]
    only_b = [e["key"] for e in report["only_in_b"]]
    if not only_a or len(only_a) != len(only_b):
        return None
    if sorted(_drop_at(k) for k in only_a) == sorted(only_b):
        return "B's keys are A's without nn.Module's @: convert A with --layout nn-module"
    prefix = _added_prefix(only_a, only_b)
    if prefix:
        return f"B's keys are A's under {prefix!r}: convert A with --add-prefix {prefix}"
    prefix = _added_prefix(only_b, only_a)
    if prefix:
        return f"A's keys are B's under {prefix!r}: convert A with --strip-prefix {prefix}"
    return None


def _added_prefix(short, long):
    """The scope ``P`` with ``{P/k for k in short} == set(long)``, or None."""
    first = "/" + short[0]
    for key in long:
        if key.endswith(first):
            prefix = key[: -len(first)]
            if {f"{prefix}/{k}" for k in short} == set(long):
                return prefix
    return None


def _key_cells(entry):
    return [entry["key"], _shape(entry["shape"])]


def _pair_cells(entry):
    cells = []
    for value in (entry["a"], entry["b"]):
        cells.append(_shape(value) if isinstance(value, list) else str(value))
    return [entry["key"]] + cells


def _left(header):
    return tuple((title, "<") for title in header)


def _number(value):
    return f"{value:.6g}"


# --- convert: key mappings ------------------------------------------------------------


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
    ):
        self.select = [_compile(p, "--select") for p in select]
        self.layout = layout
        self.strip_prefix = _scope_prefix(strip_prefix, "--strip-prefix")
        self.maps = [(_compile(old, "--map"), new) for old, new in maps]
        self.add_prefix = _scope_prefix(add_prefix, "--add-prefix")
        self.layers = [(_compile(scope, "--layer"), kind) for scope, kind in layers]
        self.transpose_deconv = transpose_deconv
        self.map_hits = [0] * len(self.maps)

    def selected(self, key):
        return not self.select or any(p.search(key) for p in self.select)

    def rename(self, key):
        """The new key of ``key`` after the prefixes and maps (the layout is applied before)."""
        if self.strip_prefix:
            if not key.startswith(self.strip_prefix):
                raise CliError(
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
            raise CliError(f"the renaming gives the empty or malformed key {key!r}")
        return key


def _compile(pattern, option):
    try:
        return re.compile(pattern)
    except re.error as error:
        raise CliError(f"{option} {pattern!r}: not a regular expression ({error})") from None


def _scope_prefix(prefix, option):
    if prefix is None:
        return None
    prefix = prefix.strip("/")
    if not prefix:
        raise CliError(f"{option}: the prefix is empty")
    return prefix + "/"


def _pair(text, option):
    old, sep, new = text.rpartition("=")
    if not sep or not old:
        raise CliError(f"{option} {text!r}: expected OLD=NEW")
    return old, new


# --- convert: known layouts -------------------------------------------------------------

#: ``nnabla.experimental.parametric_function_class`` attribute names per layer kind.
_EXPERIMENTAL_LEAVES = {
    "conv": {"W", "b"},
    "deconv": {"W", "b"},
    "affine": {"W", "b"},
    "embed": {"W"},
    "bn": {"beta", "gamma", "mean", "var"},
}


def _plain_layout(stored, mapping):
    return [_Converted(key, key, param) for key, param in stored.items()], {}


def _nn_module_layout(stored, mapping):
    """NNabla's ``nn.Module`` files: ``@a/@b/conv/W`` -> ``a/b/conv/W``."""
    converted = []
    for key, param in stored.items():
        converted.append(_Converted(key, _drop_at(key), param))
    return converted, {}


def _drop_at(key):
    return "/".join(part[1:] if part.startswith("@") else part for part in key.split("/"))


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
            converted.append(_Converted(key, new, param, transposed))
    return converted, kinds


def _layer_kind(scope, leaves, mapping):
    given = [kind for pattern, kind in mapping.layers if pattern.fullmatch(scope)]
    kind = given[0] if given else _guess_kind(scope, leaves)
    unknown = set(leaves) - _EXPERIMENTAL_LEAVES[kind]
    if unknown:
        raise CliError(
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
    raise CliError(
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

    return io.StoredParameter(name, shape, param.dtype, param.need_grad, read_into)


LAYOUTS = {
    "plain": _plain_layout,
    "nn-module": _nn_module_layout,
    "experimental": _experimental_layout,
}


class _Converted:
    """One parameter of ``convert``: its key in IN, its key in OUT, its values."""

    __slots__ = ("source", "target", "param", "transposed")

    def __init__(self, source, target, param, transposed=False):
        self.source, self.target, self.param = source, target, param
        self.transposed = transposed


# --- convert -------------------------------------------------------------------------------


def run_convert(args):
    mapping = KeyMapping(
        select=args.select,
        layout=args.layout,
        strip_prefix=args.strip_prefix,
        maps=[_pair(m, "--map") for m in args.map],
        add_prefix=args.add_prefix,
        layers=[_layer_pair(text) for text in args.layer],
        transpose_deconv=args.transpose_deconv,
    )
    _refuse_overwriting_input(args.input, args.output)
    io.file_format(args.output, writing=True)
    with io.open_parameters(args.input) as stored:
        entries, kinds = convert_entries(stored, mapping)
        if not args.dry_run:
            io.write_parameters(args.output, [(e.target, e.param) for e in entries])
    _warn_unused(mapping, stored, args)
    _report_convert(args, entries, kinds)
    return EXIT_OK


def convert_entries(stored, mapping):
    """Applies ``mapping`` to an opened file; returns ``(entries, {scope: layer kind})``.

    Raises:
        CliError: Nothing selected, or two keys renamed to one.
    """
    selected = OrderedDict((k, p) for k, p in stored.items() if mapping.selected(k))
    if not selected:
        raise CliError("no key selected (check --select)")
    entries, kinds = LAYOUTS[mapping.layout](selected, mapping)
    for entry in entries:
        entry.target = mapping.rename(entry.target)
    _check_unique(entries)
    return entries, kinds


def _layer_pair(text):
    scope, kind = _pair(text, "--layer")
    if kind not in _EXPERIMENTAL_LEAVES:
        raise CliError(f"--layer {text!r}: KIND is one of {', '.join(_EXPERIMENTAL_LEAVES)}")
    return scope, kind


def _refuse_overwriting_input(source, target):
    same = os.path.abspath(source) == os.path.abspath(target)
    if not same and os.path.exists(target) and os.path.exists(source):
        same = os.path.samefile(source, target)
    if same:
        raise CliError(f"OUT {target!r} is IN; write the converted file elsewhere")


def _check_unique(entries):
    sources = OrderedDict()
    for entry in entries:
        sources.setdefault(entry.target, []).append(entry.source)
    clashes = [f"{', '.join(s)} -> {t}" for t, s in sources.items() if len(s) > 1]
    if clashes:
        raise CliError("two keys would get one name: " + "; ".join(clashes))


def _warn_unused(mapping, stored, args):
    for hits, text in zip(mapping.map_hits, args.map):
        if not hits:
            print(
                f"nnabla-modules convert: warning: --map {text!r} changed no key", file=sys.stderr
            )
    if args.layout == "plain" and any(_drop_at(key) != key for key in stored):
        print(
            "nnabla-modules convert: note: the keys look like NNabla nn.Module's (@name/...); "
            "--layout nn-module drops the @",
            file=sys.stderr,
        )


def _report_convert(args, entries, kinds):
    if args.json:
        _print_json(_convert_json(args, entries, kinds))
        return
    if args.quiet:
        return
    changed = [e for e in entries if e.source != e.target or e.transposed]
    transposed = sum(e.transposed for e in entries)
    verb = "would write" if args.dry_run else "wrote"
    print(
        f"{args.input} -> {args.output}: {verb} {len(entries)} parameters, "
        f"{len(changed)} renamed, {transposed} transposed"
    )
    if changed:
        print()
        columns = (("Key", "<"), ("", "<"), ("New key", "<"), ("Shape", "<"))
        print("\n".join(_table(columns, [_convert_cells(e) for e in changed])))


def _convert_cells(entry):
    shape = _shape(entry.param.shape) + (" (transposed)" if entry.transposed else "")
    return [entry.source, "->", entry.target, shape]


def _convert_json(args, entries, kinds):
    parameters = [
        OrderedDict(
            key=e.source,
            new_key=e.target,
            shape=list(e.param.shape),
            dtype=str(e.param.dtype),
            need_grad=e.param.need_grad,
            transposed=e.transposed,
        )
        for e in entries
    ]
    return OrderedDict(
        input=str(args.input),
        output=str(args.output),
        written=not args.dry_run,
        layers=kinds,
        parameters=parameters,
    )


# --- output ------------------------------------------------------------------------------


def _table(columns, rows):
    """Plain-text lines: a header, a rule, the rows; columns aligned as given."""
    rows = [list(r) for r in rows]
    titles = [title for title, _ in columns]
    widths = [max(len(str(cells[i])) for cells in [titles] + rows) for i in range(len(titles))]

    def line(cells):
        parts = [f"{str(c):{align}{w}}" for c, (_, align), w in zip(cells, columns, widths)]
        return "  ".join(parts).rstrip()

    return [line(titles), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _shape(shape):
    return str(tuple(shape))


def _print_json(value):
    print(json.dumps(_finite(value), indent=2, allow_nan=False))


def _finite(value):
    """JSON has no NaN or infinity: they become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return OrderedDict((k, _finite(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
