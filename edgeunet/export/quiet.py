"""``quiet``: the one way export silences the libraries it calls (ONNX Runtime's tools, NNCF, the converters).

Libraries print progress bars and notes to Python's ``sys.stdout`` / ``sys.stderr``, from C++ straight
to file descriptors 1 and 2, and through loggers with their own handlers (``ort_format_model.utils``
logs "Created config in ..." at INFO, ``nncf`` logs through its own stream handler). Inside ``quiet``
all three are captured: the streams and descriptors into one temporary file, the named loggers'
records below WARNING held back; the captured text is logged at DEBUG (``-v`` shows it) and warnings
still pass. Import the library before entering the block: some configure their loggers on import.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence

logger = logging.getLogger(__name__)

CHATTY_LOGGERS = ("nncf", "ort_format_model", "ort_format_model.utils")  # libraries that log INFO lines themselves
TAIL = 4000  # characters of captured text kept in the debug log


class _HoldBack(logging.Filter):
    """Keeps a logger's records below WARNING out of every handler, collecting their text."""

    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        self.lines.append(f"{record.name}: {record.getMessage()}")
        return False


def _flush_c_streams() -> None:
    """Flushes C stdio buffers, so what a library printed lands in the capture, not after it."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (e.g. some Windows builds)
        pass


def _stream_handlers(loggers: Sequence[logging.Logger]) -> list[logging.StreamHandler]:
    """The handlers of the root logger and of ``loggers`` that write to descriptor 1 or 2."""
    handlers = []
    for handler in {*logging.getLogger().handlers, *(h for lg in loggers for h in lg.handlers)}:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            with contextlib.suppress(AttributeError, ValueError, OSError, io.UnsupportedOperation):
                if handler.stream.fileno() in (1, 2):
                    handlers.append(handler)
    return handlers


@contextlib.contextmanager
def _descriptors(sink, loggers: Sequence[logging.Logger]) -> Iterator[None]:
    """Points file descriptors 1 and 2 at ``sink`` for the block, while log handlers that wrote to them keep
    writing where they did (a warning still shows); nothing happens when the descriptors cannot be duplicated."""
    saved = []
    try:
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
    except OSError:
        for _, copy in saved:
            os.close(copy)
        yield
        return
    copies = dict(saved)
    handlers = [(h, h.stream) for h in _stream_handlers(loggers)]
    for handler, stream in handlers:
        handler.setStream(open(os.dup(copies[stream.fileno()]), "w", encoding=getattr(stream, "encoding", None),
                               errors="replace"))
    _flush_c_streams()
    for fd, _ in saved:
        os.dup2(sink.fileno(), fd)
    try:
        yield
    finally:
        _flush_c_streams()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        for handler, stream in handlers:
            handler.setStream(stream).close()


@contextlib.contextmanager
def quiet(what: str, loggers: Sequence[str] = CHATTY_LOGGERS) -> Iterator[None]:
    """Runs the block with the output of the libraries it calls captured and logged at DEBUG.

    Args:
        what: Names the call in the debug log ("nncf.quantize said: ...").
        loggers: Loggers whose records below WARNING are held back (their handlers would print them).
    """
    lines: list[str] = []
    hold = _HoldBack(lines)
    muted = [logging.getLogger(name) for name in loggers]
    for lg in muted:
        lg.addFilter(hold)
    chatter = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(AttributeError, ValueError, OSError):
                    stream.flush()
            with _descriptors(sink, muted), contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                yield
        finally:
            for lg in muted:
                lg.removeFilter(hold)
            sink.seek(0)
            text = "\n".join(part for part in (sink.read().decode(errors="replace").strip(),
                                               chatter.getvalue().strip(), *lines) if part)
            if text:
                logger.debug("%s said: %s", what, text[-TAIL:])
