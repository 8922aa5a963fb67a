"""``repr(module)``: the tree, each module's prefix and parameter count."""

from ._enumeration import count_parameters
from ._tree import children_of


def module_repr(module):
    """``repr(module)``; lines longer than a terminal move their note to a line of its own."""
    count, partial = count_parameters(module)
    note = f"  # {module.prefix or '(registry root)'}"
    note += f", {count:,}{'+' * partial} params" if count is not None else ", no parameters yet"
    children = children_of(module)
    head = f"{type(module).__name__}({module.extra_repr()}"
    if not children:
        return fit_to_terminal(head + ")" + note)
    lines = [head + note]
    for local, child in children:
        child_repr = repr(child).replace("\n", "\n  ")
        lines.append(f"  ({local or '<no level>'}): {child_repr}")
    return fit_to_terminal("\n".join(lines) + "\n)")


REPR_COLUMNS = 100


def fit_to_terminal(text):
    """Moves the ``# prefix, N params`` note of a line too long for a terminal to its own line."""
    fitted = []
    for line in text.split("\n"):
        code, mark, note = line.partition("  # ")
        if mark and len(line) > REPR_COLUMNS:
            indent = len(code) - len(code.lstrip())
            fitted += [code, " " * (indent + 4) + "# " + note]
        else:
            fitted.append(line)
    return "\n".join(fitted)
