"""A griffe extension for the API reference: act_lens docstrings title their doctests
``Example:``; Google style (griffe) knows ``Examples:``. Read as such, the doctests render as
code instead of Markdown (where ``['a']`` would read as a link)."""

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
