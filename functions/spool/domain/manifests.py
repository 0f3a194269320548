"""Sealed partitions (docs/delivery.md, "Sealed partitions"): once no more lines can reach a folder through the
normal path, Spool writes `_manifest.json` there, listing every object of the folder; lines that reach it later
(a redrive, a store that was down) go into new objects listed in `_manifest.{n}.json`, epoch n >= 2. Pure: the
sink (domain/delivery.py) reads the ledger, asks `seal` what to write, and writes it.

When: a folder's time window is the finest time part of the key template's folder (`keys.time_window`). An object
is named for its flush's first attempt (planner.Write.flushed_at), so on the normal path it is put within its
store call's deadline after that time. The sink seals a window at its end plus the endpoint's
`flushIntervalSeconds`, the batching window and SEAL_GRACE_SECONDS: a seal trigger message, delayed until then,
is sent when an object of the window is written.

Exactly once: the manifest of an epoch is written with a conditional put and its body depends only on the ledger
(the entries it lists and the time they were sealed for), so a sealer that runs again writes the same bytes, which
the store finds are its own; the ledger marks each entry with its epoch before the manifest is put, so a sealer
that died in between finishes that epoch rather than starting another.
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
    """One manifest to write: its key, its body, and the ledger entries it lists (to mark with its epoch first)."""

    key: str
    body: bytes
    epoch: int
    entries: list[LedgerEntry]


def seal(
    endpoint_id: str, template: str, window: tuple[float, float], entries: Iterable[LedgerEntry], sealed_at: float
) -> list[Manifest]:
    """The manifests to write for the folders of `window`: for each folder, the latest epoch again (when its entries
    are marked, its manifest may not be written yet) and, if written objects are listed in no epoch, the next
    one with them. `entries` are the endpoint's written objects (unconfirmed ones resolved by the caller);
    `sealed_at` is when this window is sealed (an epoch after the first says when its last object was recorded)."""
    start, end = window
    folders: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        if start <= entry.flushed_at < end and entry.written:
            folders[keys.folder(entry.key)].append(entry)
    found: list[Manifest] = []
    for folder, listed in sorted(folders.items()):
        latest = max(entry.epoch for entry in listed)
        if latest:
            found.append(_manifest(endpoint_id, folder, latest, [e for e in listed if e.epoch == latest], sealed_at))
        fresh = [e for e in listed if not e.epoch]
        if fresh:
            found.append(_manifest(endpoint_id, folder, latest + 1, fresh, sealed_at))
    return found


def _manifest(endpoint_id: str, folder: str, epoch: int, entries: list[LedgerEntry], sealed_at: float) -> Manifest:
    entries = sorted(entries, key=lambda e: e.key)
    at = sealed_at if epoch == 1 else max(sealed_at, max(_recorded(e) for e in entries))
    document = {
        "partition": folder,
        "endpointId": endpoint_id,
        "sealedAt": iso_timestamp(at),
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
    return Manifest(manifest_key(folder, epoch), body, epoch, entries)


def _recorded(entry: LedgerEntry) -> float:
    """When the entry was recorded: its id starts with the milliseconds (ports.entry_id)."""
    return int(entry.entry_id.split("-", 1)[0]) / 1000
