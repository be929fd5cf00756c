"""Tile caching: generations from `tile_changes`, validators and a per-process LRU of tiles.

Every statement writing what a layer tile draws inserts a row into `tile_changes` (triggers,
migration 0025): 'layers' for layer tables, places, areas, assignments, leaders and units
('issues' rows are no longer written since migration 0043). A tile's key is its request
(collection, z/x/y, parameters, the caller's scope) and the generation of its layer: the
number and id-sum of its `tile_changes` rows, which changes on every commit that touches the
layer (rows appear only when their writer commits; max(id) alone would miss a transaction
committing after a later one). So a write is seen by the very next tile request
(read-your-writes), in every worker, without any hot row to lock.

Issue tiles key on the writes to issues in their own area instead (`issue_cell_changes`,
migration 0043: a report elsewhere in the city leaves them current) and on the 'layers' rows
(who answers for which place). Issue tiles also depend on the clock (`overdue` is
`deadline < now()`): their key includes the current minute, so an issue turning overdue shows
within a minute without a write.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy.orm import Session

from geoservice.catalogue.tilegrid import tile_lat, tile_lon
from geoservice.httpcache import IssueArea, read_row

ISSUES_LAYER = "issues"
LAYERS_LAYER = "layers"
CLOCK_SECONDS = 60  # issue tiles: how long `overdue` may lag the clock


def generation(session: Session, layer: str) -> str:
    """The layer's generation: changes with every committed write to it."""
    count, total = read_row(
        session,
        "SELECT count(*), COALESCE(sum(id), 0) FROM tile_changes WHERE layer = %(layer)s",
        {"layer": layer},
    )
    return f"{count}.{total}"


def issue_tile_generation(session: Session, z: int, x: int, y: int) -> str:
    """The generation of an issue tile: the writes to issues in its area (the tile, a quarter
    of a tile and ~1 km more all round: its buffer and a GCJ-02 shift; httpcache.IssueArea)
    and the writes to what decides whose issues they are (places, assignments…: 'layers')."""
    west, east = tile_lon(x, z), tile_lon(x + 1, z)
    north, south = tile_lat(y, z), tile_lat(y + 1, z)
    margin = (east - west) / 4 + 0.01
    area = IssueArea((west - margin, south - margin, east + margin, north + margin))
    changes, params = area.changes_sql("tile")
    layers, (count, total) = read_row(
        session,
        "SELECT (SELECT count(*) || '.' || COALESCE(sum(id), 0) FROM tile_changes"
        f" WHERE layer = 'layers'), {changes}",
        params,
    )
    return f"{layers}/{count}.{total}"


def tile_key(layer: str, gen: str, parts: list[Any]) -> str:
    """An opaque key (also the ETag) of one tile request at one generation."""
    clock = int(time.time() // CLOCK_SECONDS) if layer == ISSUES_LAYER else 0
    raw = repr((layer, gen, clock, parts)).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class TileCache:
    """A thread-safe LRU of rendered tiles bounded by total bytes (one per process)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes // 8:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
