"""Whose fault an error is: the CLI prints a ``UserError`` as one line with exit code 2; any other
exception is a bug or a device failure (exit 1, the traceback under ``-v``)."""

from __future__ import annotations

import importlib
from types import ModuleType


class UserError(ValueError):
    """Bad input from the user (path, data, option) or the environment. The message names the fix."""


class MissingFileError(UserError, FileNotFoundError):
    """A path the user gave does not exist."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class DeviceError(RuntimeError):
    """A device (GPU, TensorRT, CUDA driver) failed at run time: not the user's input (exit 1)."""


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
