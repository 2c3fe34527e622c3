"""The one atomic writer: every file and folder edgeunet writes appears whole or not at all.

A file is written to a temporary name in its own folder, given the permissions the user's umask
grants (``0666 & ~umask``: 0644 under umask 022; ``mkstemp`` alone would leave 0600), then renamed
over the target with ``os.replace``. A folder (an export, a synthetic data set) is built under a
temporary name beside the target and swapped in by ``commit_dir``. Torch-free: the runtime uses it.

    with atomic_path("out/mask.png") as tmp:
        image.save(tmp)
    write_json("out/export.json", report)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

TMP_MARK = ".tmp-"  # temporary folders are named ".<target>.tmp-<pid>"


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the current umask (0o644 under 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Permissions of a new folder under the current umask (0o755 under 022)."""
    return 0o777 & ~current_umask()


def ensure_dir(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Creates ``folder`` (and parents) or raises UserError naming why it cannot be written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder} is a file: give a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {folder} ({exc.strerror or exc}): choose a writable location") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what} {folder} is not writable: choose a writable location")
    return folder


def _writable_error(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write {path} ({exc.strerror or exc}): choose a writable location")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on success it becomes ``path`` in one rename.

    The caller writes the temporary file (with any library: torch.save, Pillow, onnx). On an
    exception the temporary file is removed and ``path`` is left as it was. The temporary name ends
    in ``.tmp`` + ``suffix``, for libraries that pick the format from it (nibabel: ``.nii.gz``).

    Raises:
        UserError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder: give a file path")
    ensure_dir(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as exc:
        raise _writable_error(path, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> Path:
    """Writes ``obj`` as JSON (no NaN: it is not JSON) with a final newline, atomically."""
    return write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def remove_stale_tmp(target: str | os.PathLike) -> list[Path]:
    """Removes temporary folders and files that killed writers left beside ``target``.

    Only names this module makes (``.<name>.tmp-<pid>`` of a process that is gone) are removed.
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for stale in target.parent.glob(f".{target.name}{TMP_MARK}*"):
        pid = stale.name.rsplit(TMP_MARK, 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_dir(target: str | os.PathLike) -> Path:
    """A fresh temporary folder beside ``target`` (after removing stale ones), mode from the umask."""
    target = Path(target)
    ensure_dir(target.parent)
    remove_stale_tmp(target)
    tmp = target.parent / f".{target.name}{TMP_MARK}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(mode=dir_mode())
    except OSError as exc:
        raise _writable_error(target, exc) from None
    os.chmod(tmp, dir_mode())  # mkdir's mode is masked again; say it once
    return tmp


def commit_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Moves the finished folder ``tmp`` to ``target``; an existing ``target`` is swapped out, then removed."""
    tmp, target = Path(tmp), Path(target)
    if not target.exists():
        os.rename(tmp, target)
        return target
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yields a staging folder that replaces ``target`` whole when the block succeeds.

    On an exception the staging folder is removed and ``target`` is left as it was.
    """
    tmp = staging_dir(target)
    try:
        yield tmp
        commit_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
