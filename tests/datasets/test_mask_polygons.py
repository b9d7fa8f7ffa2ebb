"""citymask.datasets.mask_polygons, checked with pycocotools' rasteriser
(mmdet's)."""
import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from citymask.datasets.mask_polygons import mask_to_polygons
from .conftest import to_mask as _fill


def _masks():
    """Noise (diagonal contacts, single pixels, nested holes), its closing,
    PIL-drawn polygons (the PNGs' edges), masks touching every border."""
    rng, out = np.random.default_rng(0), []
    for i in range(60):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        noise = rng.random((h, w)) < rng.uniform(0.1, 0.9)
        out.append(noise)
        out.append(cv2.morphologyEx(noise.astype(np.uint8), cv2.MORPH_CLOSE,
                                    np.ones((3, 3), np.uint8)).astype(bool))
        im = Image.new('L', (w + 8, h + 8))
        n = int(rng.integers(3, 12))
        pts = rng.uniform(-4, [w + 12, h + 12], (n, 2))
        ImageDraw.Draw(im).polygon([tuple(p) for p in pts.tolist()], fill=1)
        out.append(np.asarray(im, bool))
    out.append(np.ones((5, 7), bool))
    out.append(np.zeros((5, 7), bool))
    return out


def test_polygons_fill_exactly_the_mask():
    for mask in _masks():
        h, w = mask.shape
        polygons = mask_to_polygons(mask)
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
        np.testing.assert_array_equal(_fill(polygons, h, w), mask)


def test_offset_places_a_crop_and_holes_are_cut_open():
    # COCO polygons cannot hold a hole: pycocotools unites them
    mask = np.zeros((32, 42), bool)
    mask[1:31, 2:42] = True
    mask[11:21, 17:27] = False
    mask[15:17, 21:23] = True  # an island in the hole
    polygons = mask_to_polygons(mask[1:31, 2:42], x0=2, y0=1)
    assert len(polygons) >= 3
    np.testing.assert_array_equal(_fill(polygons, 32, 42), mask)


@pytest.mark.parametrize('shape', ['rectangle', 'disc', 'slanted'])
def test_outlines_are_simplified(shape):
    # straight runs and diagonals become single segments (long digital
    # edges keep more: pixel centres stay ~0.25 px clear of the outline)
    mask = np.zeros((300, 400), np.uint8)
    if shape == 'rectangle':
        mask[50:250, 60:330] = 1
    elif shape == 'disc':
        cv2.circle(mask, (200, 150), 120, 1, -1)
    else:
        cv2.fillPoly(mask, [np.array([[30, 40], [370, 90], [300, 280],
                                      [50, 230]])], 1)
    polygons = mask_to_polygons(mask.astype(bool))
    np.testing.assert_array_equal(_fill(polygons, 300, 400), mask != 0)
    steps = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                             cv2.CHAIN_APPROX_NONE)[0][0]
    n = sum(len(p) // 2 for p in polygons)
    assert n <= {'rectangle': 8, 'disc': 0.55 * len(steps),
                 'slanted': 0.45 * len(steps)}[shape]
