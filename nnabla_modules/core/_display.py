"""``repr(module)``: the tree, each module's prefix and parameter count."""

from ._enumeration import count_parameters
from ._state import ModuleBase
from ._tree import children_of


def module_repr(module):
    """``repr(module)``; a ``Sequential`` lists its steps in call order, functions included.

    Lines longer than a terminal move their note to a line of its own.
    """
    count, partial = count_parameters(module)
    note = f"  # {module.prefix or '(registry root)'}"
    note += f", {count:,}{'+' * partial} params" if count is not None else ", no parameters yet"
    steps = module._display_steps()
    items = children_of(module) if steps is None else steps
    head = f"{type(module).__name__}({module.extra_repr()}"
    if not items:
        return fit_to_terminal(head + ")" + note)
    lines = [head + note]
    shown = {}
    for label, item in items:
        label = label or "<no level>"
        if id(item) in shown:  # one instance held twice: its weights are shown once
            text = f"the module of ({shown[id(item)]})"
        elif isinstance(item, ModuleBase):
            shown[id(item)] = label
            text = repr(item).replace("\n", "\n  ")
        else:  # a plain callable of a Sequential: F.relu
            text = getattr(item, "__name__", None) or repr(item)
        lines.append(f"  ({label}): {text}")
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
