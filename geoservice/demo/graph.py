"""The demo county generator: generic graph helpers (adjacency, partitioning)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from geoservice.demo.model import M_PER_DEG_LAT, M_PER_DEG_LON


class _Retry(Exception):
    """Raised when a random draw produced an unusable configuration; the build is redone."""


def _shared_edges(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of polygons sharing boundary segments (exact vertex matches), with the
    shared length in metres. Works because the tiling's neighbours share identical vertices."""
    rings, owner_ring = shapely.get_rings(polys, return_index=True)
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    owner = owner_ring[ring_idx]
    same = ring_idx[1:] == ring_idx[:-1]
    a = coords[:-1][same]
    b = coords[1:][same]
    own = owner[:-1][same]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    p = np.where(swap[:, None], b, a)
    q = np.where(swap[:, None], a, b)
    seg_len = np.hypot((q[:, 0] - p[:, 0]) * M_PER_DEG_LON, (q[:, 1] - p[:, 1]) * M_PER_DEG_LAT)
    keys = np.concatenate([p, q], axis=1)
    _, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    inv_s = inv[order]
    dup = inv_s[1:] == inv_s[:-1]
    i = own[order[:-1][dup]]
    j = own[order[1:][dup]]
    w = seg_len[order[:-1][dup]]
    keep = (i != j) & (w > 0)
    return _aggregate_pairs(i[keep], j[keep], w[keep], len(polys))


def _aggregate_pairs(
    i: np.ndarray, j: np.ndarray, w: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    lo = np.minimum(i, j).astype(np.int64)
    hi = np.maximum(i, j).astype(np.int64)
    key = lo * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    wsum = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
    return np.stack([uniq // n, uniq % n], axis=1), wsum


def _label_pairs(
    pairs: np.ndarray, w: np.ndarray, labels: np.ndarray, n_labels: int
) -> tuple[np.ndarray, np.ndarray]:
    a = labels[pairs[:, 0]]
    b = labels[pairs[:, 1]]
    m = a != b
    return _aggregate_pairs(a[m], b[m], w[m], n_labels)


def _neighbours(n: int, pairs: np.ndarray, w: np.ndarray) -> list[dict[int, float]]:
    nbrs: list[dict[int, float]] = [{} for _ in range(n)]
    for (a, b), ww in zip(pairs.tolist(), w.tolist(), strict=True):
        nbrs[a][b] = ww
        nbrs[b][a] = ww
    return nbrs


def _groups(labels: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for node, lab in enumerate(labels.tolist()):
        out.setdefault(lab, []).append(node)
    return out


def _components(nodes: Sequence[int], nbrs: list[dict[int, float]]) -> list[list[int]]:
    todo = set(nodes)
    comps: list[list[int]] = []
    for start in nodes:
        if start not in todo:
            continue
        todo.discard(start)
        comp = [start]
        stack = [start]
        while stack:
            u = stack.pop()
            for v in nbrs[u]:
                if v in todo:
                    todo.discard(v)
                    comp.append(v)
                    stack.append(v)
        comps.append(sorted(comp))
    return comps


def _make_contiguous(
    labels: np.ndarray, nbrs: list[dict[int, float]], size: np.ndarray
) -> np.ndarray:
    """Moves the smaller disconnected parts of each label to the neighbouring label that shares
    the longest boundary with them, until every label is one connected set."""
    labels = labels.copy()
    for _ in range(1000):
        changed = False
        for lab, nodes in sorted(_groups(labels).items()):
            comps = _components(nodes, nbrs)
            if len(comps) <= 1:
                continue
            comps.sort(key=lambda c: (-float(size[c].sum()), c[0]))
            for comp in comps[1:]:
                shared: dict[int, float] = {}
                for u in comp:
                    for v, ww in nbrs[u].items():
                        other = int(labels[v])
                        if other != lab:
                            shared[other] = shared.get(other, 0.0) + ww
                if shared:
                    best = max(sorted(shared), key=lambda k: shared[k])
                    labels[comp] = best
                    changed = True
        if not changed:
            return labels
    raise _Retry("contiguity did not converge")


def _is_connected(nodes: set[int], nbrs: list[dict[int, float]]) -> bool:
    if len(nodes) <= 1:
        return True
    start = min(nodes)
    seen = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v in nbrs[u]:
            if v in nodes and v not in seen:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(nodes)


def _balance(
    labels: np.ndarray,
    nbrs: list[dict[int, float]],
    pos: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """Moves boundary nodes from larger to smaller neighbouring labels, keeping every label
    connected, until every label has lo..hi nodes (as far as possible) and no two neighbours
    differ by more than a gap. Each move lowers the sum of squared sizes, so this terminates."""
    labels = labels.copy()
    members = {k: set(v) for k, v in _groups(labels).items()}
    gap = max(3, round(0.45 * (lo + hi) / 2))

    def threshold(small: int, big: int) -> int:
        return 2 if len(members[small]) < lo or len(members[big]) > hi else gap

    def try_move(src: int, dst: int) -> bool:
        centre = pos[sorted(members[dst])].mean(axis=0)
        cands = sorted(
            (u for u in members[src] if any(int(labels[v]) == dst for v in nbrs[u])),
            key=lambda u: (float(np.hypot(*(pos[u] - centre))), u),
        )
        for u in cands:
            if _is_connected(members[src] - {u}, nbrs):
                members[src].discard(u)
                members[dst].add(u)
                labels[u] = dst
                return True
        return False

    for _ in range(500):
        moved = 0
        for c in sorted(members, key=lambda k: (len(members[k]), k)):
            around = {int(labels[v]) for u in members[c] for v in nbrs[u]} - {c}
            for d in sorted(around, key=lambda k: (-len(members[k]), k)):
                if len(members[d]) - len(members[c]) < threshold(c, d):
                    break
                if try_move(d, c):
                    moved += 1
                    break
        if not moved:
            break
    return labels


def _nearest(centres: np.ndarray, pts: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(shapely.points(centres))
    res = tree.query_nearest(pts, all_matches=False)
    out = np.zeros(len(pts), dtype=np.int64)
    out[res[0]] = res[1]
    return out


def _kmeans(
    pts: np.ndarray, k: int, rng: np.random.Generator, weights: np.ndarray, iters: int = 30
) -> np.ndarray:
    """Weighted k-means (k-means++ start, Lloyd iterations); returns a label per point."""
    n = len(pts)
    k = max(1, min(k, n))
    centres = np.empty((k, 2))
    cum = np.cumsum(weights)
    first = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
    centres[0] = pts[first]
    d2 = ((pts - centres[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        cum = np.cumsum(d2 * weights)
        idx = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
        centres[j] = pts[idx]
        d2 = np.minimum(d2, ((pts - centres[j]) ** 2).sum(axis=1))
    geoms = shapely.points(pts)
    labels = _nearest(centres, geoms)
    for _ in range(iters):
        ws = np.bincount(labels, weights=weights, minlength=k)
        sx = np.bincount(labels, weights=weights * pts[:, 0], minlength=k)
        sy = np.bincount(labels, weights=weights * pts[:, 1], minlength=k)
        new = centres.copy()
        ok = ws > 0
        new[ok, 0] = sx[ok] / ws[ok]
        new[ok, 1] = sy[ok] / ws[ok]
        if np.allclose(new, centres, atol=0.5):
            break
        centres = new
        labels = _nearest(centres, geoms)
    return labels


def _compact(labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    return inv.ravel().astype(np.int64)


def _partition(
    pos: np.ndarray,
    pairs: np.ndarray,
    w: np.ndarray,
    k: int,
    rng: np.random.Generator,
    weights: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """Groups nodes by nearest (k-means) seed, then makes the groups connected and balanced."""
    nbrs = _neighbours(len(pos), pairs, w)
    labels = _kmeans(pos, k, rng, weights)
    labels = _make_contiguous(labels, nbrs, weights)
    labels = _balance(labels, nbrs, pos, lo, hi)
    labels = _make_contiguous(labels, nbrs, weights)
    return _compact(labels)
