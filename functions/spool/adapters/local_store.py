"""An endpoint's local directory (provider `local`): names are never reused, since a finished temp file is
published with a hard link, which fails when the name exists."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from spool.domain.errors import StoreError
from spool.domain.paths import local_object_path


class LocalStore:
    """A directory below the configured root; each object is written to a temp file and then linked. The
    encryption, storage class and checksum settings are S3's: provider local takes none of them
    (domain/providers.py)."""

    def __init__(self, root: str, directory: str) -> None:
        self._root = root
        self._directory = directory

    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        path = local_object_path(self._root, self._directory, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            with open(temp, "xb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
            finally:
                temp.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"local store: {exc.strerror or type(exc).__name__}") from None
        return True

    def delete(self, key: str) -> None:
        try:
            local_object_path(self._root, self._directory, key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"local store: {exc.strerror or type(exc).__name__}") from None

    def holds(self, key: str, sha256: str) -> bool | None:
        try:
            body = local_object_path(self._root, self._directory, key).read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"local store: {exc.strerror or type(exc).__name__}") from None
        return hashlib.sha256(body).hexdigest() == sha256

    def path(self, key: str) -> Path:
        return local_object_path(self._root, self._directory, key)
