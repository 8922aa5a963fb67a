"""Regenerates the docs' generated figures from the library itself.

    python docs/figures.py           # rewrites the files below
    python docs/figures.py --check   # exits 1 naming each file that is out of date

* ``docs/images/module_tree.svg``: the module tree of the model of
  ``docs/concepts.md`` (its first example), the prefix of each module and the
  registry keys its layers create, read from the live model and drawn as SVG.
* ``docs/images/digits_summary.txt``: ``model.summary(...)`` of the ResNet of
  ``examples/train_digits.py``.

The training curve ``docs/images/digits_training_curve.png`` is what
``make demo`` draws; ``make docs-figures`` reruns the demo and copies it here.
Each figure is made in a fresh process, so the models get the names shown.
"""

import argparse
import importlib.util
import re
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT))  # this checkout's package, also when run as a script

# --- the model of the diagram: the first example of docs/concepts.md -----------------------


def concepts_model():
    """Runs the first ```python block of docs/concepts.md; returns its ``Net()``."""
    text = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    code = re.search(r"^```python\n(.*?)^```", text, re.M | re.S).group(1)
    namespace = {"__name__": "concepts"}
    exec(compile(code, "docs/concepts.md", "exec"), namespace)
    return namespace["Net"]()


# --- the diagram ------------------------------------------------------------------------

FONT = 13  # px
FONT_FAMILY = "ui-monospace, SFMono-Regular, Menlo, Consolas, &#39;DejaVu Sans Mono&#39;, monospace"
CHAR = 0.61 * FONT  # advance of one character in a monospace font
ROW = 22
PAD = 16
INDENT = 22
KEYS_TITLE = "keys in nn.get_parameters(grad_only=False)"
COLOURS = {"prefix": "#1f5fa8", "pf": "#b3461a", "stat": "#7a7a7a", "tree": "#9aa5b1"}


def diagram_rows(model):
    """One row per module and per further key: (depth, label, prefix, [key parts])."""
    rows = []
    for relative, module in model.named_modules():
        depth = len(_tree_path(model, module)) - 1 if relative else 0
        label = f"{module.name}: {type(module).__name__}"
        keys = list(module.get_parameters(grad_only=False, recursive=False).items())
        first = [_key_parts(module.prefix, *keys[0])] if keys else []
        rows.append((depth, label, module.prefix, first))
        for key, param in keys[1:]:
            rows.append((depth, None, None, [_key_parts(module.prefix, key, param)]))
    return rows


def _tree_path(root, module):
    """The modules from the root down to ``module``."""
    for _, child in root.named_children():
        if child is module:
            return [root, child]
        below = _tree_path(child, module)
        if below:
            return [root, *below]
    return []


def _key_parts(prefix, key, param):
    return (prefix + "/", key, param.need_grad)


def element(tag, content="", **attributes):
    """One SVG element; ``fill_opacity=`` is written ``fill-opacity``."""
    attrs = " ".join(f'{k.rstrip("_").replace("_", "-")}="{v}"' for k, v in attributes.items())
    return f"<{tag} {attrs}>{content}</{tag}>" if content else f"<{tag} {attrs}/>"


def render_svg(rows):
    legend = [
        ("prefix", "the module's prefix: the root's name, then the attribute path"),
        ("pf", "PF's own scope and parameter name, exactly as the PF call creates it"),
        ("stat", "batch-norm running statistics: need_grad=False, left out by get_parameters()"),
    ]
    tree_width = max(depth * INDENT + len(label) * CHAR for depth, label, _, _ in rows if label)
    prefix_x = PAD + tree_width + 2.5 * PAD
    prefix_width = max(len(prefix) * CHAR for _, _, prefix, _ in rows if prefix)
    keys_x = prefix_x + prefix_width + 2.5 * PAD
    keys = [head + key for *_, parts in rows for head, key, _ in parts] + [KEYS_TITLE]
    width = max(
        keys_x + max(map(len, keys)) * CHAR, PAD + 20 + max(len(t) for _, t in legend) * CHAR
    )
    width = round(width + PAD)
    top = PAD + ROW * 1.6
    height = round(top + ROW * (len(rows) + len(legend) + 0.8) + PAD)

    def baseline(i):
        return round(top + ROW * i + FONT, 1)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="title" '
        f'font-family="{FONT_FAMILY}" font-size="{FONT}">',
        element(
            "title",
            "A module tree, the prefix of each module and the registry keys its layers create",
            id="title",
        ),  # fmt: skip
        element("rect", width=width, height=height, rx=8, fill="#ffffff", stroke="#d0d7de"),
    ]
    for x, title in ((PAD, "module tree"), (prefix_x, "module.prefix"), (keys_x, KEYS_TITLE)):
        out.append(element("text", escape(title), x=x, y=PAD + FONT, font_weight="bold"))
    parent_baselines = {}  # depth -> baseline of the last module row at that depth
    for i, (depth, label, prefix, parts) in enumerate(rows):
        y = baseline(i)
        if i % 2 == 0:
            out.append(element("rect", x=4, y=y - FONT - 4, width=width - 8, height=ROW,
                               fill="#f6f8fa"))  # fmt: skip
        if label is not None:
            x = PAD + depth * INDENT
            if depth:  # an elbow from the parent's row
                px = PAD + (depth - 1) * INDENT + 6
                path = f"M{px},{parent_baselines[depth - 1] + 5} V{y - 4} H{x - 4}"
                out.append(element("path", d=path, fill="none", stroke=COLOURS["tree"]))
            parent_baselines[depth] = y
            out.append(element("text", escape(label), x=x, y=y))
            out.append(element("text", escape(prefix), x=round(prefix_x, 1), y=y,
                               fill=COLOURS["prefix"]))  # fmt: skip
        for head, key, need_grad in parts:
            spans = element("tspan", escape(head), fill=COLOURS["prefix"]) + element(
                "tspan", escape(key), fill=COLOURS["pf" if need_grad else "stat"]
            )
            out.append(element("text", spans, x=round(keys_x, 1), y=y))
    y = baseline(len(rows)) + ROW * 0.8
    for j, (kind, text) in enumerate(legend):
        out.append(element("rect", x=PAD, y=round(y + j * ROW - FONT + 2, 1), width=12,
                           height=12, fill=COLOURS[kind]))  # fmt: skip
        out.append(element("text", escape(text), x=PAD + 20, y=round(y + j * ROW, 1)))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def module_tree_svg():
    return render_svg(diagram_rows(concepts_model()))


# --- the example's summary ------------------------------------------------------------------


def digits_summary():
    path = ROOT / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("train_digits", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    model = example.ResNet(name="resnet")
    return str(model.summary((64, 1, 8, 8))) + "\n"


FIGURES = {"module_tree.svg": module_tree_svg, "digits_summary.txt": digits_summary}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Regenerates the docs' generated figures.")
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, make in FIGURES.items():
        path = IMAGES / name
        text = make()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(name)
        else:
            IMAGES.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        sys.exit(f"out of date in docs/images: {', '.join(stale)}; run: python docs/figures.py")


if __name__ == "__main__":
    main()
