"""Where provider `local` may write: only below the configured root (SPEC: Guarantees)."""

from __future__ import annotations

import os
from pathlib import Path

from spool.domain.errors import InvalidInput


def check_local_target(root: str, directory: str, prefix: str) -> Path:
    """Return the directory objects go to, or raise when it would leave `root`.

    `directory` and `prefix` are already free of `..`, absolute paths and odd characters (fields.py); this
    also resolves symlinks that exist on disk, so a link planted below the root cannot lead out of it.
    """
    base = Path(root).resolve()
    target = base / directory / os.path.dirname(prefix)
    resolved = target.resolve()
    if resolved != base and base not in resolved.parents:
        raise InvalidInput("leads outside the local storage root", field="storageConfig.prefix")
    return resolved


def local_object_path(root: str, directory: str, key: str) -> Path:
    """The file for `key`, checked again at write time (links can appear after the endpoint was created)."""
    base = Path(root).resolve()
    path = (base / directory / key).resolve()
    if base not in path.parents:
        raise InvalidInput("leads outside the local storage root", field="storageConfig.prefix")
    return path
