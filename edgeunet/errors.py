"""Errors that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

import importlib
from types import ModuleType


class UserError(ValueError):
    """Bad input from the user (path, data, option). The message names the fix."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, package: str | None = None) -> ModuleType:
    """Imports ``module`` or raises an error naming the pip extra that provides it.

    Args:
        module: The module to import, e.g. ``"torch"``.
        extra: The edgeunet extra that installs it, e.g. ``"train"``.
        package: The PyPI name when it differs from the module name.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{package or module} is not installed: run `pip install 'edgeunet[{extra}]'` ({exc})"
        ) from exc
