"""Sealed partitions (docs/delivery.md, "Sealed partitions"): once no more lines can reach a folder through the
normal path, Spool writes `_manifest.json` there, listing every object of the folder; lines that reach it later
(a redrive, a store that was down) go into new objects listed in `_manifest.{n}.json`, epoch n >= 2. Pure: the
sink (domain/delivery.py) reads the ledger, asks `seal` what to write, and writes it.

When: a folder's time window is the finest time part of the key template's folder (`keys.time_window`). An object
is named for its flush's first attempt (planner.Write.flushed_at), so on the normal path it is put within its
store call's deadline after that time. The sink seals a window at its end plus the endpoint's
`flushIntervalSeconds`, the batching window and SEAL_GRACE_SECONDS: a seal trigger message, delayed until then,
is sent when an object of the window is written.

Exactly once: the ledger marks each entry with its epoch (and when it was sealed) before the manifest is put, so a
sealer that died in between finishes that epoch rather than starting another; the manifest's body depends only on
those marked entries, so that sealer writes the same bytes, which the store finds are its own; a manifest put is
recorded in the ledger as an entry of its own, and an epoch with one is not written again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from spool.domain import keys
from spool.domain.naming import iso_timestamp
from spool.domain.ports import LedgerEntry

# How long after a window's end (plus the endpoint's flushIntervalSeconds and the batching window) its folders are
# sealed: more than a store call's deadline for an ordinary object (10 s), so an object named in the window is
# in the store by then, with room for a slow flush and the sealer's own trigger.
SEAL_GRACE_SECONDS = 30
MANIFEST_CONTENT_TYPE = "application/json"


def seal_at(window_end: float, interval: int, lead: float) -> int:
    """When a window's folders are sealed (Unix seconds)."""
    return int(window_end + interval + lead + SEAL_GRACE_SECONDS + 0.999)


def manifest_key(folder: str, epoch: int) -> str:
    name = "_manifest.json" if epoch == 1 else f"_manifest.{epoch}.json"
    return f"{folder}/{name}" if folder else name


@dataclass(frozen=True)
class Manifest:
    """One manifest to write: its key, its body, the ledger entries it lists (to mark with its epoch first) and
    when it was sealed."""

    key: str
    body: bytes
    epoch: int
    entries: list[LedgerEntry]
    sealed_at: float


def is_manifest(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith("_manifest")


def seal(
    endpoint_id: str, window: tuple[float, float], entries: Iterable[LedgerEntry], sealed_at: float
) -> list[Manifest]:
    """The manifests to write for the folders of `window`: for each folder, the latest epoch again if its entries
    are marked but its manifest is not recorded as written, and, if written objects are listed in no epoch, the
    next one with them, sealed at `sealed_at`. `entries` are the endpoint's ledger entries (unconfirmed ones
    resolved by the caller), its manifests' among them."""
    start, end = window
    folders: dict[str, list[LedgerEntry]] = defaultdict(list)
    done: set[str] = set()  # manifests written
    for entry in entries:
        if start <= entry.flushed_at < end and entry.written:
            if is_manifest(entry.key):
                done.add(entry.key)
            else:
                folders[keys.folder(entry.key)].append(entry)
    found: list[Manifest] = []
    for folder, listed in sorted(folders.items()):
        latest = max(entry.epoch for entry in listed)
        if latest and manifest_key(folder, latest) not in done:
            marked = [e for e in listed if e.epoch == latest]
            found.append(_manifest(endpoint_id, folder, latest, marked, max(e.sealed_at for e in marked)))
        fresh = [e for e in listed if not e.epoch]
        if fresh:
            found.append(_manifest(endpoint_id, folder, latest + 1, fresh, sealed_at))
    return found


def _manifest(endpoint_id: str, folder: str, epoch: int, entries: list[LedgerEntry], sealed_at: float) -> Manifest:
    entries = sorted(entries, key=lambda e: e.key)
    document = {
        "partition": folder,
        "endpointId": endpoint_id,
        "sealedAt": iso_timestamp(sealed_at),
        "epoch": epoch,
        "events": sum(e.events for e in entries),
        "objects": [
            {
                "key": e.key,
                "bytes": e.bytes,
                "events": e.events,
                "sha256": e.sha256,
                "firstCreatedAt": e.first_created_at,
                "lastCreatedAt": e.last_created_at,
                "firstId": e.first_id,
                "lastId": e.last_id,
            }
            for e in entries
        ],
    }
    body = (json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    return Manifest(manifest_key(folder, epoch), body, epoch, entries, sealed_at)
