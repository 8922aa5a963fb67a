"""Sphinx configuration: ``make docs`` builds this with warnings as errors."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import nnabla_modules  # noqa: E402

project = "nnabla_modules"
author = "nnabla_modules developers"
copyright = "the nnabla_modules developers"
version = release = nnabla_modules.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_copybutton",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Markdown (MyST): anchors for "page.md#a-heading" links, ::: fences for notes.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference from the Google-style docstrings.
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # the layers' signatures are PF's; types are in the docstrings
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Shape"]  # each layer's, as PyTorch's reference has

html_theme = "furo"
html_title = f"nnabla_modules {version}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # wide tables and diagrams at a laptop's width
html_favicon = "_static/favicon.svg"

# The copy button copies code without the prompts of ">>>" examples and shell lines.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
