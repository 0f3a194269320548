"""Everything the process says while a test runs: log output and every exception raised in any thread.

Powertools' Logger writes to the stdout it found at import time, so its handler's stream is redirected here
(and restored afterwards); a handler of our own on the root logger and on Spool's loggers also keeps the raw
records, extras included. Exceptions come from `sys.monitoring` (RAISE events, interpreter-wide), so even
the ones that are caught and never logged are seen.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from spool.observability import logger as powertools_logger


@dataclass
class RaisedException:
    type: str
    where: str
    text: str


@dataclass
class Capture:
    stream: io.StringIO = field(default_factory=io.StringIO)
    records: list[str] = field(default_factory=list)
    exceptions: list[RaisedException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def log_text(self) -> str:
        with self.lock:
            return self.stream.getvalue() + "\n".join(self.records)

    def json_lines(self) -> list[dict[str, Any]]:
        with self.lock:
            text = self.stream.getvalue()
        found = []
        for line in text.splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found


class _Keep(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(logging.NOTSET)
        self._capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.name} {record.levelname} {record.getMessage()} " + json.dumps(
                {k: v for k, v in vars(record).items() if k not in ("msg", "args")}, default=str
            )
        except Exception as exc:  # a record that cannot be formatted is itself worth seeing
            text = f"{record.name} unformattable record: {exc!r}"
        with self._capture.lock:
            self._capture.records.append(text)


def _free_tool_id() -> int:
    for tool in range(6):
        if sys.monitoring.get_tool(tool) is None:
            return tool
    raise RuntimeError("no free sys.monitoring tool id")


@contextmanager
def everything_said() -> Iterator[Capture]:
    capture = Capture()
    spool_loggers = [powertools_logger._logger] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("spool")
    ]
    streams: dict[logging.StreamHandler[Any], Any] = {}
    for log in spool_loggers:
        for handler in log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler not in streams:
                streams[handler] = handler.setStream(_Locked(capture))
    keeper = _Keep(capture)
    for log in [logging.getLogger(), *spool_loggers]:
        log.addHandler(keeper)

    def on_raise(code: CodeType, offset: int, exception: BaseException) -> None:
        try:
            text = f"{exception!s} {exception.args!r} {getattr(exception, '__notes__', '')}"
        except Exception as exc:
            text = f"unprintable: {exc!r}"
        with capture.lock:
            capture.exceptions.append(RaisedException(type(exception).__name__, code.co_filename, text))

    tool = _free_tool_id()
    sys.monitoring.use_tool_id(tool, "spool-reliability-capture")
    sys.monitoring.register_callback(tool, sys.monitoring.events.RAISE, on_raise)
    sys.monitoring.set_events(tool, sys.monitoring.events.RAISE)
    try:
        yield capture
    finally:
        sys.monitoring.set_events(tool, 0)
        sys.monitoring.register_callback(tool, sys.monitoring.events.RAISE, None)
        sys.monitoring.free_tool_id(tool)
        for log in [logging.getLogger(), *spool_loggers]:
            log.removeHandler(keeper)
        for handler, original in streams.items():
            handler.setStream(original)


class _Locked(io.TextIOBase):
    """A text stream into the capture's buffer, safe to write from several threads."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture

    def write(self, text: str) -> int:
        with self._capture.lock:
            return self._capture.stream.write(text)

    def flush(self) -> None:
        pass
