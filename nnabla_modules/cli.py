"""The command line: inspect, diff and convert NNabla parameter files.

Run it as ``nnabla-modules`` or ``python -m nnabla_modules``::

    nnabla-modules inspect model.h5                 # keys, shapes, dtypes, counts per scope
    nnabla-modules diff old.h5 new.h5               # exit status 0 only when equal
    nnabla-modules convert old.h5 new.h5 --strip-prefix res_unit
    nnabla-modules convert exp.h5 pf.h5 --layout experimental
    nnabla-modules convert mod.h5 pf.h5 --layout nn-module
    nnabla-modules convert pf.h5 mod.h5 --to-layout nn-module

This module parses arguments and prints; the work is done by
:mod:`nnabla_modules.files` (reading and atomic writing), :mod:`nnabla_modules.compare`
and :mod:`nnabla_modules.convert`, imported only once the arguments are valid,
so ``--help`` and ``--version`` never load NNabla. NNabla's own log lines
below warnings are silenced. Every command takes ``--json`` for machine output:
one compact JSON object on one line (JSON Lines).
Exit status: 0 success (for ``diff``: equal), 1 ``diff`` found differences,
2 an error, 130 interrupted, 141 the output pipe closed (``| head``).
"""

import argparse
import json
import logging
import math
import os
import sys
from collections import OrderedDict

from . import __version__
from ._util import table_lines

__all__ = ["main", "build_parser", "CliError", "PROGRESS_BYTES"]

EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED, EXIT_PIPE_CLOSED = 130, 141  # 128 + SIGINT, 128 + SIGPIPE: as a shell reports

#: Files (together) at least this large get a progress bar on stderr (when tqdm is installed).
PROGRESS_BYTES = 64 << 20


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
    args = build_parser().parse_args(argv)  # --help, --version and bad arguments exit here
    _quiet_nnabla()
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's flush at exit
        return status
    except BrokenPipeError:
        # The reader went away (| head): say nothing more, and keep Python's
        # final flush of stdout from failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (CliError, ValueError, OSError) as error:
        _error(args, _message(error))
    except Exception as error:  # a bug: still exit status 2, never 1 ("different")
        import traceback

        traceback.print_exc()
        _error(args, f"unexpected {type(error).__name__}: {shown(str(error))}")
    return EXIT_ERROR


def _quiet_nnabla():
    """NNabla logs "Initializing CPU extension..." at import: below warnings, stay quiet."""
    logger = logging.getLogger("nnabla")
    if logger.level == logging.NOTSET:  # the user's own configuration wins
        logger.setLevel(logging.WARNING)


def _error(args, message):
    print(f"nnabla-modules {args.command}: error: {message}", file=sys.stderr)


def _message(error):
    if isinstance(error, OSError) and error.filename is not None:
        return f"{shown(error.strerror or str(error))}: {shown(repr(error.filename))}"
    return "\n".join(shown(line) for line in str(error).split("\n"))


def shown(text):
    """``text`` safe for a terminal: control characters (``\\x1b``, ``\\r``, ...) escaped.

    File names and keys come from files that may be hostile; escaped, they cannot
    move the cursor, clear the screen or hide a table row.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# --- arguments ------------------------------------------------------------------------


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


def _tolerance(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def _depth(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text!r}")
    return value


def _add_progress(parser):
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (shown on stderr for files of 64 MiB or more)",
    )


def _add_inspect(commands):
    p = commands.add_parser(
        "inspect",
        help="the tree of keys with shapes, dtypes, need_grad and counts per scope",
        description="Prints the tree of keys of a parameter file with shapes, dtypes, "
        "need_grad and parameter counts per scope.",
    )
    p.add_argument("file", help="a .h5, .protobuf, .nntxt or .nnp file")
    p.add_argument(
        "--depth",
        type=_depth,
        metavar="N",
        help="show scopes down to depth N only (0: the file's line alone)",
    )
    p.add_argument("--json", action="store_true", help="machine output")
    p.set_defaults(run=run_inspect)


def _add_diff(commands):
    p = commands.add_parser(
        "diff",
        help="keys only in A or B, shape mismatches, differing values",
        description="Compares two parameter files, one tensor at a time: keys only in A, "
        "only in B, shape, dtype and need_grad mismatches, and for each shared tensor the "
        "number of differing elements and the min, max and mean of B - A. Values are equal "
        "when |B - A| <= atol + rtol * |B|. Exit status 0 only when the files are equal, 1 "
        "when they differ, 2 on an error.",
    )
    p.add_argument("a", metavar="A", help="the first file")
    p.add_argument("b", metavar="B", help="the second file")
    p.add_argument("--atol", type=_tolerance, default=0.0, help="absolute tolerance (default 0)")
    p.add_argument(
        "--rtol", type=_tolerance, default=0.0, help="tolerance relative to |B| (default 0)"
    )
    p.add_argument("--json", action="store_true", help="machine output")
    _add_progress(p)
    p.set_defaults(run=run_diff)


def _add_convert(commands):
    p = commands.add_parser(
        "convert",
        help="rename keys (prefixes, regex maps, known layouts) into a new file",
        description="Writes IN's parameters to OUT under new keys, one tensor at a time. In "
        "this order: --select picks keys, --layout translates a known layout, --strip-prefix, "
        "--map (each in turn), --add-prefix, --to-layout. OUT is written atomically; IN is "
        "never overwritten.",
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
        choices=("experimental", "nn-module", "plain"),
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
    p.add_argument(
        "--to-layout",
        choices=("plain", "nn-module"),
        default="plain",
        help="the layout of OUT: plain (default), or nn-module (NNabla's nn.Module files: "
        "a/conv/W -> @a/conv/W; every scope above the layers' own is a module unless "
        "--module-scope says which)",
    )
    p.add_argument(
        "--module-scope",
        action="append",
        default=[],
        metavar="REGEX",
        help="--to-layout nn-module: the scopes (re.fullmatch on a/b) that are modules, "
        "marked with @; repeatable",
    )
    p.add_argument("--dry-run", action="store_true", help="show the renaming, write nothing")
    p.add_argument(
        "--quiet", action="store_true", help="print nothing on success (no progress bar either)"
    )
    p.add_argument("--json", action="store_true", help="machine output")
    _add_progress(p)
    p.set_defaults(run=run_convert)


# --- progress -------------------------------------------------------------------------


class _Progress:
    """A tqdm bar on stderr over ``total`` bytes, or nothing (small files, no tqdm, disabled)."""

    def __init__(self, enabled, total, description):
        self.bar = None
        if enabled and total >= PROGRESS_BYTES:
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is optional
                return
            self.bar = tqdm(
                total=total, desc=description, unit="B", unit_scale=True, file=sys.stderr
            )

    def update(self, nbytes):
        if self.bar is not None:
            self.bar.update(nbytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _nbytes(stored):
    return sum(p.size * p.dtype.itemsize for p in stored.values())


# --- inspect ------------------------------------------------------------------------


def run_inspect(args):
    from . import files

    with files.open_parameters(args.file) as stored:
        info = _file_info(args.file, stored)
        tree = _scope_tree(stored)
        _check_printable(args.file, tree, args)
        if args.json:
            info["parameters"] = [_parameter_json(p) for p in stored.values()]
            info["scopes"] = OrderedDict(_scope_counts(tree, args.depth))
            _print_json(info)
        else:
            print(_file_line(info))
            if args.depth != 0:
                print()
                print("\n".join(table_lines(_INSPECT_COLUMNS, _tree_rows(tree, args.depth))))
    return EXIT_OK


_INSPECT_COLUMNS = (
    ("Key", "<"),
    ("Shape", "<"),
    ("Dtype", "<"),
    ("need_grad", "<"),
    ("Params", ">"),
)


def _file_info(path, stored):
    from . import files

    sizes = [p.size for p in stored.values()]
    return OrderedDict(
        file=str(path),
        format=files.file_format(path),
        count=len(stored),
        total=sum(sizes),
        trainable=sum(p.size for p in stored.values() if p.need_grad),
    )


def _file_line(info):
    return (
        f"{shown(info['file'])}: {info['format']}, {info['count']} parameters, "
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


class _Scope(OrderedDict):
    """A scope of the inspect tree: name + '/' -> subscope, leaf -> parameter; and its size."""

    size = 0


def _scope_tree(stored):
    """Nested scopes in first-appearance order, each with its count of values."""
    root = _Scope()
    for key, param in stored.items():
        *scopes, leaf = key.split("/")
        node = root
        for scope in scopes:
            node = node.setdefault(scope + "/", _Scope())
            node.size += param.size
        node[leaf] = param
    return root


def _walk_tree(tree, max_depth=None):
    """Yields ``(depth, scopes, name, value)`` depth first, in order: ``scopes`` holds the
    names of the enclosing scopes (one list, changed as the walk goes on).

    No recursion, and no path built per level: a key may nest thousands of scopes
    (HDF5 stores them), and their paths would hold characters quadratic in its depth.
    """
    stack, scopes = [iter(tree.items())], []
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            if scopes:
                scopes.pop()
            continue
        name, value = item
        depth = len(scopes)
        yield depth, scopes, name, value
        if isinstance(value, _Scope) and (max_depth is None or depth + 1 < max_depth):
            stack.append(iter(value.items()))
            scopes.append(name)


def _scope_counts(tree, max_depth):
    """Yields ``(scope path, parameter count)`` for every scope, depth first."""
    for depth, scopes, name, value in _walk_tree(tree, max_depth):
        if isinstance(value, _Scope) and (max_depth is None or depth < max_depth):
            yield "".join(scopes) + name[:-1], value.size


def _tree_rows(tree, max_depth):
    for depth, _, name, value in _walk_tree(tree, max_depth):
        indent = "  " * depth
        if isinstance(value, _Scope):
            yield [indent + shown(name), "", "", "", f"{value.size:,}"]
        elif max_depth is None or depth < max_depth:
            yield [
                indent + shown(name),
                _shape(value.shape),
                str(value.dtype),
                str(value.need_grad),
                f"{value.size:,}",
            ]


def _check_printable(path, tree, args):
    """Refuses a tree whose output would be out of proportion to the file: the table's
    rows are as wide as its deepest key's indentation, the JSON names every scope by its
    path, and a key nested N levels deep makes either quadratic in N."""
    from .files import _h5

    rows = widest = paths = length = 0
    lengths = []  # the path length of each enclosing scope
    for depth, _, name, value in _walk_tree(tree, args.depth):
        del lengths[depth:]
        length = (lengths[-1] if lengths else 0) + len(name)
        lengths.append(length)
        rows += 1
        widest = max(widest, 2 * depth + len(name))
        paths += length if isinstance(value, _Scope) else 0
    size = os.path.getsize(path)
    limit = max(_h5.KEY_CHARACTERS_PER_BYTE * size, _h5.SMALL)
    printed = paths if args.json else rows * widest
    if printed > limit:
        raise CliError(
            f"{shown(str(path))}: its keys nest too deep to print: about {printed:,} "
            f"characters for its {size:,} bytes; show fewer levels with --depth N"
        )


# --- diff ---------------------------------------------------------------------------


def run_diff(args):
    from . import files
    from .compare import compare_files

    with files.open_parameters(args.a) as a, files.open_parameters(args.b) as b:
        with _Progress(args.progress, _nbytes(a) + _nbytes(b), "diff") as progress:
            report = compare_files(a, b, args.atol, args.rtol, progress=progress.update)
        count_a, count_b = len(a), len(b)
    report["a"], report["b"] = str(args.a), str(args.b)
    report["atol"], report["rtol"] = args.atol, args.rtol
    if args.json:
        _print_json(report)
    else:
        print("\n".join(_diff_lines(report, count_a, count_b)))
    return EXIT_OK if report["equal"] else EXIT_DIFFERENT


def _diff_lines(report, count_a, count_b):
    lines = [
        f"A: {shown(report['a'])} ({count_a} parameters)",
        f"B: {shown(report['b'])} ({count_b} parameters)",
    ]
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
            table = table_lines(_left(header), [cells(e) for e in entries])
            lines += ["  " + line for line in table]
    values = report["value_differences"]
    if values:
        lines += [
            "",
            f"Values differ ({len(values)} of {report['compared']} compared; "
            f"{report['differing_elements']:,} of {report['compared_elements']:,} elements):",
        ]
        columns = (
            ("Key", "<"),
            ("Differing", ">"),
            ("Max |diff|", ">"),
            ("Min B-A", ">"),
            ("Max B-A", ">"),
            ("Mean B-A", ">"),
        )
        rows = [
            [
                shown(e["key"]),
                f"{e['differing']:,} of {e['size']:,}",
                _number(e["max_abs_diff"]),
                _number(e["min_diff"]),
                _number(e["max_diff"]),
                _number(e["mean_diff"]),
            ]
            for e in values
        ]
        lines += ["  " + line for line in table_lines(columns, rows)]
    largest = report["largest_abs_diff"]
    if largest is not None:
        lines += [
            "",
            "Largest absolute difference of shared values: "
            f"{_number(largest['value'])} ({shown(largest['key'])})",
        ]
    hint = _renaming_hint(report)
    if hint:
        lines += ["", f"Hint: {shown(hint)}"]
    lines += ["", "Equal." if report["equal"] else "Different."]
    return lines


def _renaming_hint(report):
    """A ``convert`` option when the keys only in A and only in B differ by a known renaming."""
    from .core._naming import without_module_marks

    only_a = [e["key"] for e in report["only_in_a"]]
    only_b = [e["key"] for e in report["only_in_b"]]
    if not only_a or len(only_a) != len(only_b):
        return None
    if sorted(without_module_marks(k) for k in only_a) == sorted(only_b):
        return "B's keys are A's without nn.Module's @: convert A with --layout nn-module"
    if sorted(without_module_marks(k) for k in only_b) == sorted(only_a):
        return "B's keys are A's with nn.Module's @: convert A with --to-layout nn-module"
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
    return [shown(entry["key"]), _shape(entry["shape"])]


def _pair_cells(entry):
    cells = []
    for value in (entry["a"], entry["b"]):
        cells.append(_shape(value) if isinstance(value, list) else str(value))
    return [shown(entry["key"])] + cells


def _left(header):
    return tuple((title, "<") for title in header)


def _number(value):
    return "-" if value is None else f"{value:.6g}"


# --- convert ---------------------------------------------------------------------------


def run_convert(args):
    from . import files
    from .convert import KeyMapping, convert_entries

    mapping = KeyMapping(
        select=args.select,
        layout=args.layout,
        strip_prefix=args.strip_prefix,
        maps=[_pair(m, "--map") for m in args.map],
        add_prefix=args.add_prefix,
        layers=[_layer_pair(text) for text in args.layer],
        transpose_deconv=args.transpose_deconv,
        to_layout=args.to_layout,
        module_scopes=args.module_scope,
    )
    _refuse_overwriting_input(args.input, args.output)
    files.file_format(args.output, writing=True)
    with files.open_parameters(args.input) as stored:
        entries, kinds = convert_entries(stored, mapping)
        if not args.dry_run:
            total = sum(e.param.size * e.param.dtype.itemsize for e in entries)
            with _Progress(args.progress and not args.quiet, total, "convert") as progress:
                files.write_parameters(
                    args.output, [(e.target, _counted(e.param, progress)) for e in entries]
                )
    _warn_unused(mapping, stored, args)
    _report_convert(args, entries, kinds)
    return EXIT_OK


def _counted(param, progress):
    """``param``, reporting its bytes to the progress bar once read."""
    from . import files

    def read_into(out):
        param.read_into(out)
        progress.update(out.nbytes)

    return files.StoredParameter(param.name, param.shape, param.dtype, param.need_grad, read_into)


def _pair(text, option):
    old, sep, new = text.rpartition("=")
    if not sep or not old:
        raise CliError(f"{option} {text!r}: expected OLD=NEW")
    return old, new


def _layer_pair(text):
    from .convert import EXPERIMENTAL_KINDS

    scope, kind = _pair(text, "--layer")
    if kind not in EXPERIMENTAL_KINDS:
        raise CliError(f"--layer {text!r}: KIND is one of {', '.join(EXPERIMENTAL_KINDS)}")
    return scope, kind


def _refuse_overwriting_input(source, target):
    same = os.path.abspath(source) == os.path.abspath(target)
    if not same and os.path.exists(target) and os.path.exists(source):
        same = os.path.samefile(source, target)
    if same:
        raise CliError(f"OUT {target!r} is IN; write the converted file elsewhere")


def _warn_unused(mapping, stored, args):
    from .core._naming import without_module_marks

    for hits, text in zip(mapping.map_hits, args.map):
        if not hits:
            print(
                f"nnabla-modules convert: warning: --map {text!r} changed no key", file=sys.stderr
            )
    if args.module_scope and args.to_layout != "nn-module":
        print(
            "nnabla-modules convert: warning: --module-scope applies to --to-layout nn-module only",
            file=sys.stderr,
        )
    if args.layout == "plain" and any(without_module_marks(key) != key for key in stored):
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
        f"{shown(args.input)} -> {shown(args.output)}: {verb} {len(entries)} parameters, "
        f"{len(changed)} renamed, {transposed} transposed"
    )
    if changed:
        print()
        columns = (("Key", "<"), ("", "<"), ("New key", "<"), ("Shape", "<"))
        print("\n".join(table_lines(columns, [_convert_cells(e) for e in changed])))


def _convert_cells(entry):
    shape = _shape(entry.param.shape) + (" (transposed)" if entry.transposed else "")
    return [shown(entry.source), "->", shown(entry.target), shape]


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


def _shape(shape):
    return str(tuple(shape))


def _print_json(value):
    """One compact object on one line (JSON Lines); ensure_ascii escapes hostile keys."""
    text = json.dumps(_finite(value), separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    print(text)


def _finite(value):
    """JSON has no NaN or infinity: they become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return OrderedDict((k, _finite(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
