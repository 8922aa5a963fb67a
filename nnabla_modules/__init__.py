"""nnabla_modules: PyTorch-like module classes whose weights stay in NNabla's registry.

Each module instance owns a unique parameter-scope prefix; calling it enters
that scope and runs NNabla's own parametric functions, so the weights live in
``nn.get_parameters()`` under the prefix and can be enumerated, frozen, saved
and loaded per object.
"""

__version__ = "0.1.0"

from .core._quiet import nnabla_import_quiet

with nnabla_import_quiet():  # NNabla's "Initializing CPU extension..." INFO line
    from .containers import ModuleDict, ModuleList, Sequential
    from .layers import *  # noqa: F401,F403
    from .layers import __all__ as _layer_names
    from .module import (
        Module,
        SharedParameterWarning,
        orphans,
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )
    from .wrap import FunctionModule, wrap

from ._solver_save import read_solvers_by_registry
from .core._imports import mark_missing

mark_missing()  # docs/nnabla_process.md
read_solvers_by_registry()  # docs/nnabla_process.md

__all__ = [
    "Module",
    "orphans",
    "SharedParameterWarning",
    "register_module_forward_hook",
    "register_module_forward_pre_hook",
    *_layer_names,
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "FunctionModule",
    "wrap",
]
