"""Crop RLEs: boxes as pycocotools computes them, exact round trips."""
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from citymask.evaluation.crops import (crop_coco_rle, crop_masks,
                                       crop_masks_tensor, decode_crop,
                                       encode_crop)


def _random_masks(h, w, n, seed):
    rng, masks = np.random.default_rng(seed), np.zeros((n, h, w), bool)
    for i in range(n - 2):
        y, x = rng.integers(0, h), rng.integers(0, w)
        masks[i, y:y + rng.integers(1, h // 2),
              x:x + rng.integers(1, w // 2)] = True
        masks[i] &= rng.random((h, w)) < 0.8  # holes
    masks[-2, :, -1] = True  # right edge column
    masks[-2, -1, :3] = True  # bottom-left corner
    # masks[-1] stays empty
    return masks


@pytest.mark.parametrize('w', [64, 61])  # the uint64 path and the other
def test_crop_entries(w):
    """crop_masks: pycocotools' boxes, exact round trips; encode_crop (whole
    or at an offset), the tensor path (on CPU tensors) and mmdet's full-image
    RLEs (bytes or str counts) give the same entries."""
    masks = _random_masks(40, w, 12, seed=w)
    masks[0] = True  # runs longer than 2**5 * several characters
    crops = crop_masks(masks)
    assert crops[-1] is None and encode_crop(masks[-1]) is None
    tensor = crop_masks_tensor(torch.from_numpy(masks))
    assert [g is None for g in tensor] == [m is None for m in crops]
    for mask, crop, from_tensor in zip(masks, crops, tensor):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        for counts in (rle['counts'], rle['counts'].decode()):
            assert crop_coco_rle(dict(size=rle['size'], counts=counts),
                                 (40, w)) == crop
        if crop is None:
            continue
        x0, y0, pixels = decode_crop(crop)
        assert pixels.flags['C_CONTIGUOUS'] and pixels.dtype == np.uint8
        assert (x0, y0, pixels.shape[1], pixels.shape[0]) == tuple(
            mask_utils.toBbox(rle))
        full = np.zeros_like(mask)
        full[y0:y0 + pixels.shape[0], x0:x0 + pixels.shape[1]] = pixels
        np.testing.assert_array_equal(full, mask)
        for got in (from_tensor, encode_crop(mask),
                    encode_crop(mask[y0:, x0:], x0, y0)):
            assert got[:2] == (x0, y0)
            np.testing.assert_array_equal(decode_crop(got)[2], pixels)
    assert crop_masks_tensor(torch.zeros((3, 8, 8), dtype=torch.bool)) == \
        [None] * 3
    assert crop_masks(np.zeros((0, 8, 8), bool)) == []
    assert crop_masks_tensor(torch.zeros((0, 8, 8), dtype=torch.bool)) == []


def test_coco_rle_of_a_hostile_file_is_refused():
    """Runs that do not cover the image exactly (pycocotools' decoder
    would write past the mask), bad characters, another size."""
    rle = mask_utils.encode(np.asfortranarray(np.ones((4, 5), np.uint8)))
    for bad, why in [(dict(rle, counts=b'0k`0'), 'runs cover'),
                     (dict(rle, counts=b'0' + b'o' * 9 + b'1'), '32 bits'),
                     (dict(rle, counts=b'0\x0020'), 'not a COCO RLE string'),
                     (dict(rle, counts=b'0o'), 'not a COCO RLE string'),
                     (dict(rle, size=[5, 4]), 'not a COCO RLE of a 5x4'),
                     ([1, 2], 'not a COCO RLE')]:
        with pytest.raises(ValueError, match=why):
            crop_coco_rle(bad, (4, 5))
    # a run of 2**20 pixels in a 4x5 image
    big = mask_utils.encode(np.asfortranarray(np.ones((1024, 1024), np.uint8)))
    with pytest.raises(ValueError, match='runs cover 1048576 pixels, not '
                       '5x4'):
        crop_coco_rle(dict(size=[4, 5], counts=big['counts']), (4, 5))
