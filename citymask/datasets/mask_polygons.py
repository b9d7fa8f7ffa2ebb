"""Binary masks as COCO polygons that rasterise back to the same pixels.

pycocotools fills a pixel whose centre is inside the polygon; PIL, which
draws Cityscapes' PNGs, also those the outline touches (half a pixel more
along every edge). So the converter draws the PNGs' pixels and traces
them back here: each 8-connected region (``cv2.findContours``) outlined
through the midpoints of its boundary pixel edges (centres >= 0.35 px
clear: pycocotools' 1/5-px rounding changes nothing), simplified
Douglas-Peucker style where every centre stays ``margin`` clear (checked,
else the exact outline is kept); holes, which COCO polygons can't
express, cut open along a pixel column. Coordinates are pixel corners
(pixel ``(x, y)`` covers ``[x, x + 1) x [y, y + 1)``), as in COCO.
"""
from typing import List, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils

# the 8 neighbours, in OpenCV's tracing order reversed (see _SIDES)
_STEPS = np.array([(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1),
                   (0, -1), (1, -1)])
# (dy + 1) * 3 + (dx + 1) -> index into _STEPS
_STEP_INDEX = np.full(9, -1)
_STEP_INDEX[(_STEPS[:, 1] + 1) * 3 + _STEPS[:, 0] + 1] = np.arange(8)


def _side_table() -> Tuple[np.ndarray, np.ndarray]:
    """Pixel sides crossed at a contour pixel, per (back, next) step: the
    4-neighbours OpenCV's trace sweeps past (outside the region) between
    the pixel it came from and the one it goes to, as step indices in the
    outline's order (-1 padded)."""
    table = np.full((8, 8, 4), -1)
    for back in range(8):
        for nxt in range(8):
            s, out = (back - 1) % 8, []
            while s != nxt:
                if s % 2 == 0:
                    out.append(s)
                s = (s - 1) % 8
            table[back, nxt, :len(out)] = out
    return table, np.array([0, 6, 4, 2])  # a lone pixel: all four sides


_SIDE_TABLE, _LONE_PIXEL = _side_table()


def _outline(chain: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marching-squares outline of one border (``(N, 2)`` pixels ``(x, y)``
    from ``cv2.findContours(..., CHAIN_APPROX_NONE)``): its vertices
    (midpoints of the crossed pixel edges) and, for each, the centres of
    the pixels inside and outside that edge."""
    if len(chain) == 1:
        sides = _LONE_PIXEL[None]
    else:
        def step(d):
            return _STEP_INDEX[(d[:, 1] + 1) * 3 + d[:, 0] + 1]
        sides = _SIDE_TABLE[step(np.roll(chain, 1, axis=0) - chain),
                            step(np.roll(chain, -1, axis=0) - chain)]
    keep = sides >= 0
    centre = np.repeat(chain[:, None, :] + 0.5, 4, axis=1)[keep]
    steps = _STEPS[sides[keep]]
    return centre + 0.5 * steps, centre, centre + steps


def _simplify(vertices: np.ndarray, inside: np.ndarray, outside: np.ndarray,
              margin: float) -> np.ndarray:
    """Douglas-Peucker on a closed outline where a segment may replace a
    piece of outline only if the pixel centres beside that piece stay
    ``margin`` or more on their side of it."""
    n = len(vertices)
    if n <= 4:
        return vertices
    x, y = vertices[:, 0], vertices[:, 1]
    area2 = float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if area2 == 0:
        return vertices
    sign = 1.0 if area2 > 0 else -1.0  # inside is left (+) or right (-)
    keep = np.zeros(n, bool)
    far = int(np.argmax(np.hypot(*(vertices - vertices[0]).T)))
    keep[[0, far]] = True
    stack = [(0, far), (far, n)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        idx = np.arange(i, j + 1) % n
        p0, d = vertices[i], vertices[j % n] - vertices[i]
        length = float(np.hypot(*d))
        if length > 0:
            def side(pts):
                rel = pts[idx] - p0
                return sign * (d[0] * rel[:, 1] - d[1] * rel[:, 0]) / length
            if (side(inside).min() >= margin and
                    side(outside).max() <= -margin):
                continue
            rel = vertices[idx[1:-1]] - p0
            dist = np.abs(d[0] * rel[:, 1] - d[1] * rel[:, 0])
        else:  # the piece starts and ends at one point: split it anyway
            dist = np.hypot(*(vertices[idx[1:-1]] - p0).T)
        k = i + 1 + int(np.argmax(dist))
        keep[k] = True
        stack += [(i, k), (k, j)]
    return vertices[keep]


def _hole_free_pieces(mask: np.ndarray, x_off: int
                      ) -> List[Tuple[int, list]]:
    """``(x_offset, contours)`` of pieces of ``mask`` without holes: cut
    along the pixel column through a hole's middle until none has one."""
    padded = np.pad(mask, 1).view(np.uint8)
    contours, hierarchy = cv2.findContours(padded, cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    holes = [c for c, h in zip(contours, hierarchy[0]) if h[3] >= 0]
    if not holes:
        return [(x_off, [c[:, 0, :] - 1 for c in contours])]
    filled = np.zeros_like(padded)
    cv2.drawContours(filled, holes[:1], 0, 1, thickness=cv2.FILLED)
    hole_cols = np.flatnonzero((filled & (padded ^ 1)).any(axis=0)) - 1
    cut = int(hole_cols[len(hole_cols) // 2])
    return (_hole_free_pieces(mask[:, :cut], x_off) +
            _hole_free_pieces(mask[:, cut:], x_off + cut))


def _rasterise(polygons: List[np.ndarray], height: int, width: int) -> dict:
    return mask_utils.merge(mask_utils.frPyObjects(
        [p.ravel().tolist() for p in polygons], height, width))


def mask_to_polygons(mask: np.ndarray, x0: int = 0, y0: int = 0,
                     margin: float = 0.25) -> List[List[float]]:
    """Flat ``[x1, y1, x2, ...]`` COCO polygons (full-image corners; []
    if empty) that pycocotools fills to exactly the (H, W) boolean
    ``mask``, a crop at ``(x0, y0)``; ``margin``: how close (px) a
    simplified outline may come to a pixel centre (rounding needs ~0.2).
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    height, width = mask.shape
    exact, simple = [], []
    for x_off, chains in _hole_free_pieces(mask, 0):
        for chain in chains:
            vertices, inside, outside = _outline(chain)
            shift = np.array([x_off, 0])
            exact.append(vertices + shift)
            simple.append(_simplify(vertices, inside, outside, margin) + shift)
    if not exact:
        return []
    target = mask_utils.encode(np.asfortranarray(mask.view(np.uint8)))
    if _rasterise(simple, height, width)['counts'] != target['counts']:
        # keep only the simplified outlines that fill what theirs do
        simple = [s if _rasterise([s], height, width)['counts'] ==
                  _rasterise([e], height, width)['counts'] else e
                  for s, e in zip(simple, exact)]
    offset = np.array([x0, y0])
    return [[int(v) if v.is_integer() else v
             for v in (p + offset).ravel().tolist()] for p in simple]
