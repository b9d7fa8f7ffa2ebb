"""The PNG readers: ground truth, and the fast mask reader vs PIL (the
official one) and OpenCV, on their files and every PNG filter type."""
import io
import struct
import types
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from citymask.errors import CitymaskError
from citymask.evaluation import mask_png
from citymask.evaluation.crops import crop_masks
from citymask.evaluation.mask_png import (_chunk, _chunks, _decode_grey,
                                          _unfilter_band, read_gt,
                                          read_mask_crop, read_pred_mask)
from ..tools.conftest import error


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(f, row, prior):
    """PNG spec 9.2, one byte per pixel for filtering, written plainly."""
    out = []
    for x, v in enumerate(row):
        a = row[x - 1] if x else 0
        b = prior[x]
        c = prior[x - 1] if x else 0
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][f]
        out.append((v - pred) % 256)
    return bytes([f] + out)


def _png(img, depth=8, filters=None):
    """A grey PNG of ``img`` (uint8 values, or 0/1 for depth 1) with the
    given filter type per row."""
    h, w = img.shape
    rows = (np.packbits(img.astype(np.uint8), axis=1) if depth == 1 else
            img.astype(np.uint8))
    prior, raw = [0] * rows.shape[1], b''
    for f, row in zip([0] * h if filters is None else filters, rows.tolist()):
        raw += _filter_row(f, row, prior)
        prior = row
    return _file(w, h, depth, zlib.compress(raw))


def _file(w, h, depth, idat):
    return (b'\x89PNG\r\n\x1a\n' +
            _chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, 0, 0, 0, 0))
            + _chunk(b'IDAT', idat) + _chunk(b'IEND', b''))


def _masks():
    rng = np.random.default_rng(0)
    h, w = 48, 61  # width not a multiple of 8
    blobs = np.zeros((h, w), np.uint8)
    cv2.ellipse(blobs, (30, 20), (14, 9), 30, 0, 360, 255, -1)
    cv2.circle(blobs, (8, 40), 5, 255, -1)
    blobs[10:14, 50:] = 255  # touches the right edge
    edges = np.zeros((h, w), np.uint8)
    edges[0, :] = 255
    edges[:, 0] = 128
    edges[-1, -1] = 1
    bottom = np.zeros((h, w), np.uint8)
    bottom[30:, 20:40] = 255  # runs to the last row
    single = np.zeros((h, w), np.uint8)
    single[17, 33] = 7
    noise = rng.integers(0, 256, (h, w)).astype(np.uint8)
    noise[rng.random((h, w)) < 0.6] = 0
    return dict(blobs=blobs, edges=edges, bottom=bottom, single=single,
                noise=noise, full=np.full((h, w), 255, np.uint8),
                empty=np.zeros((h, w), np.uint8))


FILTERS = {name: (lambda h, rng, f=f: [f] * h) for f, name in enumerate(
    ['none', 'sub', 'up', 'average', 'paeth'])}
FILTERS['mixed'] = lambda h, rng: rng.integers(0, 5, h).tolist()


def _reference(path, opencv=True):
    """Shape and crop from PIL's pixels (what the official script reads),
    checked against OpenCV's."""
    mask = read_pred_mask(path)
    assert not opencv or np.array_equal(
        mask, cv2.imread(path, cv2.IMREAD_UNCHANGED) != 0)
    return mask.shape, crop_masks(mask[None])[0]


@pytest.mark.parametrize('filters', sorted(FILTERS))
@pytest.mark.parametrize('depth', [8, 1])
def test_every_filter_type(tmp_path, filters, depth):
    """The fast path's pixels are PIL's and OpenCV's; for 8-bit files every
    value in the un-filtered band is exact (and zeros outside it), and PIL
    decodes the encoder's file to ``img`` (the encoder checked)."""
    rng = np.random.default_rng(1)
    for name, img in _masks().items():
        if depth == 1:
            img = img != 0
        for trial in range(3 if depth == 8 else 1):
            data = _png(img, depth, FILTERS[filters](img.shape[0], rng))
            (tmp_path / f'{name}.png').write_bytes(data)
            path = str(tmp_path / f'{name}.png')
            assert _decode_grey(data) is not None  # the fast path ran
            assert read_mask_crop(path) == _reference(path)
            if depth == 1:
                continue
            np.testing.assert_array_equal(
                np.asarray(Image.open(io.BytesIO(data))), img)
            (w, h, *_), stream = _chunks(data)
            rows = np.frombuffer(zlib.decompress(stream), np.uint8).reshape(
                h, w + 1)
            band = _unfilter_band(rows[:, 0], rows[:, 1:])
            if band is None:
                assert not img.any()
                continue
            y0, x0, values = band
            got = np.zeros_like(img)
            got[y0:y0 + len(values), x0:x0 + values.shape[1]] = values
            np.testing.assert_array_equal(got, img, err_msg=name)


OTHER_MODES = ('I;16', 'RGB', 'P', 'LA')  # not the fast path: PIL's


@pytest.mark.parametrize('writer', ['pil', 'pil-1bit', 'cv2', 'cv2-bilevel',
                                    *OTHER_MODES])
def test_files_from_pil_and_opencv(tmp_path, writer):
    """Grey masks as PIL and OpenCV write them take the fast path, other
    modes are read by PIL as the official script does: the same pixels."""
    full = np.zeros((1024, 2048), np.uint8)  # full size, as mmdet writes
    cv2.ellipse(full, (1500, 600), (300, 120), 10, 0, 360, 255, -1)
    for name, img in dict(_masks(), mmdet=full).items():
        path = str(tmp_path / f'{name}.png')
        if writer == 'pil':
            Image.fromarray(img).save(path)
        elif writer == 'pil-1bit':
            Image.fromarray(img != 0).save(path)
        elif writer == 'cv2':
            cv2.imwrite(path, img)
        elif writer == 'cv2-bilevel':
            cv2.imwrite(path, (img != 0).astype(np.uint8) * 255,
                        [cv2.IMWRITE_PNG_BILEVEL, 1])
        elif writer == 'I;16':
            Image.fromarray(img.astype(np.uint16) * 200).save(path)
        elif writer == 'LA':
            Image.fromarray(np.dstack([img, img])).save(path)
        else:
            Image.fromarray(img).convert(writer).save(path)
        with open(path, 'rb') as f:
            assert (_decode_grey(f.read()) is None) == (writer in OTHER_MODES)
        assert read_mask_crop(path) == _reference(
            path, opencv=writer not in OTHER_MODES)


def test_broken_files_name_the_file(tmp_path):
    good = _png(_masks()['blobs'], 8, [1] * 48)
    for name, data in [('truncated', good[:len(good) // 2]),
                       ('garbage', b'not a png at all'),
                       ('bad-zlib', good.replace(b'IDAT', b'IDAT\x00', 1))]:
        path = tmp_path / f'{name}.png'
        path.write_bytes(data)
        assert f'{name}.png' in error(read_mask_crop, str(path))
    assert 'missing.png' in error(read_mask_crop, f'{tmp_path}/missing.png')
    # a header claiming 60000x60000 pixels: refused before any allocation
    bomb = _file(60000, 60000, 8, zlib.compress(b'\0' * 60001))
    (tmp_path / 'bomb.png').write_bytes(bomb)
    with pytest.raises(CitymaskError, match='bomb.png.*exceeds limit'):
        read_mask_crop(str(tmp_path / 'bomb.png'))
    # files over the cap are not read (32 MiB by default)
    (tmp_path / 'big.png').write_bytes(good)
    assert f'big.png: {len(good)} bytes, more than the {len(good) - 1} ' in \
        error(read_mask_crop, f'{tmp_path}/big.png', max_bytes=len(good) - 1)


def test_read_gt(tmp_path, monkeypatch):
    """pyspng decodes ground truth without PIL, PIL what pyspng can't, to
    the same uint16 array (8-bit too); colour or broken files refused."""
    gt = np.zeros((6, 8), np.uint16)
    gt[1:3, 1:4] = 33001
    gt[4, :] = 65535
    path16, path8 = str(tmp_path / 'a.png'), str(tmp_path / 'b.png')
    cv2.imwrite(path16, gt)
    cv2.imwrite(path8, (gt % 251).astype(np.uint8))

    def refuse(*args, **kwargs):
        raise RuntimeError('not this decoder')

    with monkeypatch.context() as m:
        m.setattr(mask_png, 'Image', types.SimpleNamespace(open=refuse))
        np.testing.assert_array_equal(read_gt(path16), gt)
        got8 = read_gt(path8)
    assert got8.dtype == np.uint16
    np.testing.assert_array_equal(got8, gt % 251)
    with monkeypatch.context() as m:
        m.setattr(mask_png, 'pyspng', types.SimpleNamespace(load=refuse))
        got16 = read_gt(path16)
        assert got16.dtype == np.uint16
        np.testing.assert_array_equal(got16, gt)
    cv2.imwrite(path8, np.zeros((6, 8, 3), np.uint8))
    assert error(read_gt, path8) == (f'{path8}: expected a single-channel '
                                     'instance id image, got shape (6, 8, 3)')
    with open(path8, 'wb') as f:
        f.write(b'not a png')
    assert error(read_gt, path8).startswith(
        f'cannot read ground truth {path8}: ')
