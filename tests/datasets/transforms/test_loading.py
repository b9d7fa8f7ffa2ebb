"""LoadCityscapesImage gives mmcv's pixels, faster, and names bad files."""
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from PIL import Image

from citymask.datasets import LoadCityscapesImage
from ...tools.conftest import error


def _refuse(self, results):
    raise AssertionError('fell back to mmcv')  # what loads took the fast path


@pytest.mark.parametrize('mode', ['RGB', 'RGBA', 'L', 'I;16'])
def test_same_pixels_as_mmcv(tmp_path, monkeypatch, mode):
    rng = np.random.default_rng(0)
    shape = {'RGB': (37, 53, 3), 'RGBA': (37, 53, 4)}.get(mode, (37, 53))
    path = str(tmp_path / 'x.png')
    dtype = np.uint16 if mode == 'I;16' else np.uint8
    Image.fromarray(rng.integers(0, np.iinfo(dtype).max, shape, dtype)
                    ).save(path)
    for kwargs in ({}, {'to_float32': True}):
        ref = LoadImageFromFile(**kwargs).transform(dict(img_path=path))
        with monkeypatch.context() as m:
            if mode != 'I;16':  # 16-bit: mmcv's conversion rules apply
                m.setattr(LoadImageFromFile, 'transform', _refuse)
            ours = LoadCityscapesImage(**kwargs).transform(dict(img_path=path))
        assert ours['img'].dtype == ref['img'].dtype
        np.testing.assert_array_equal(ours['img'], ref['img'])
        assert ours['img_shape'] == ref['img_shape'] == (37, 53)
        assert ours['ori_shape'] == ref['ori_shape'] == (37, 53)


@pytest.mark.parametrize('name,kwargs', [
    ('x.png', dict(color_type='grayscale')),
    ('x.png', dict(color_type='unchanged')), ('x.jpg', {}),
    ('http://example.com/x.png', {}),
    ('x.png', dict(backend_args=dict(backend='local'))),
    ('x.png', dict(file_client_args=dict(backend='disk')))])
def test_anything_but_a_local_colour_png_goes_to_mmcv(tmp_path, monkeypatch,
                                                      name, kwargs):
    import pyspng
    path = name if '://' in name else str(tmp_path / name)
    if '://' not in name:
        Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path)
    seen = []
    monkeypatch.setattr(LoadImageFromFile, 'transform',
                        lambda self, results: seen.append(results) or 'mmcv')
    monkeypatch.setattr(pyspng, 'load', None)  # decoding by pyspng fails
    assert LoadCityscapesImage(**kwargs).transform(
        dict(img_path=path)) == 'mmcv'
    assert seen == [dict(img_path=path)]


def test_the_error_line_says_why_without_repeating_the_path(tmp_path,
                                                            monkeypatch):
    import pyspng
    path = tmp_path / 'broken_leftImg8bit.png'
    path.write_bytes(b'\x89PNG not really')
    load = LoadCityscapesImage().transform
    assert error(load, dict(img_path=str(path))).startswith(
        f'cannot read image {path} (')
    # mmcv's message ends with ": PATH"; the line names the path once
    path = tmp_path / 'broken_leftImg8bit.jpg'
    path.write_bytes(b'not a jpeg')
    assert error(load, dict(img_path=str(path))) == (
        f'cannot read image {path} (failed to load image); re-download it '
        'or remove it from the annotation file')

    # an exception without a message: its type says what went wrong
    def fails(data):
        raise ValueError()
    monkeypatch.setattr(pyspng, 'load', fails)
    png = str(tmp_path / 'x.png')
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(png)
    assert f'{png} (ValueError); ' in error(load, dict(img_path=png))
