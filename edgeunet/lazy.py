"""Lazy re-exports: a light package names functions of its heavy (torch) modules, imported on first use.

``edgeunet.prune`` and ``edgeunet.train`` import light, so that the CLI can read their settings'
defaults while building its parser; ``lazy_exports`` gives them the module ``__getattr__`` and
``__dir__`` (PEP 562) that import ``prune_checkpoint``, ``train`` and the like when first asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: dict[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names in ``table`` load on first use.

    Args:
        package: The package's ``__name__``.
        table: Exported name -> module, relative to the package (``{"train": ".run"}``).
        namespace: The package's ``globals()``, listed by ``__dir__`` with the lazy names.

    Returns:
        (``__getattr__``, ``__dir__``): the first returns ``table``'s attribute from its module (the
        object itself, not a wrapper) and raises AttributeError for any other name.
    """

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*namespace, *table])

    return __getattr__, __dir__
