"""The module system's private files: naming, the module tree, calls and the registry.

The public face is :mod:`nnabla_modules.module` (``Module``); docs/architecture.md
says what each file owns.
"""
