"""The converter on ``conftest.py``'s frame vs cityscapesscripts' instance
PNG of it; run for every mutant (``mutation.sh converter``)."""
import io
import json
import os
import os.path as osp
import struct
from collections import Counter

import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import id2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from PIL import Image

from citymask.datasets import cityscapes_converter as conv
from citymask.datasets.cityscapes_converter import (convert_cityscapes,
                                                    convert_splits,
                                                    resolve_nproc)
from citymask.errors import ConversionError
from citymask.evaluation.mask_png import _chunk
from ..tools.conftest import error
from .conftest import (FRAME, OBJECTS, H, W, car, check_regions, to_mask,
                       write_frame)

IMAGE = f'lindau/{FRAME}_leftImg8bit.png'


def _val(root, *args, **kwargs):
    return convert_splits(root, ['val'], *args, progress=False,
                          **kwargs)['val']


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_annotations_are_the_regions_cityscapesscripts_draws(tmp_path, fmt):
    root = str(tmp_path / 'cs')
    inst = write_frame(root)
    out = convert_cityscapes(  # polygons by default
        root, str(tmp_path / 'out'), ['val'], progress=False,
        **({} if fmt == 'polygon' else dict(mask_format=fmt)))
    assert out == {'val': str(tmp_path / 'out' /
                              'instancesonly_filtered_gtFine_val.json')}
    with open(out['val']) as f:
        coco = json.load(f)
    assert coco['images'] == [dict(
        width=W, height=H, id=0, file_name=IMAGE,
        segm_file=f'lindau/{FRAME}_gtFine_instanceIds.png')]
    # cityscapesscripts' evaluated labels, in its order, ids as category ids
    assert coco['categories'] == [
        dict(id=lb.id, name=lb.name) for lb in id2label.values()
        if lb.hasInstances and not lb.ignoreInEval]
    assert [(a['id'], a['image_id']) for a in coco['annotations']] == [
        (k + 1, 0) for k in range(len(coco['annotations']))]
    by_id = check_regions(coco['annotations'], inst)
    # the hidden truck, the deleted rider and the caravan have none
    assert sorted(by_id) == [24, 26, 24000, 26000, 28000, 31000, 32000, 33000]
    # on the borders: the first and last rows / columns are the thing's
    x, y, w, h = by_id[26]['bbox']
    assert by_id[31000]['bbox'][:2] == [0, 0] and x + w == W
    assert sum(by_id[32000]['bbox'][1::2]) == H
    assert inst[175, 30] == 0  # the unlabeled band erased part of the car
    if fmt == 'rle':
        assert all(set(a['segmentation']) == {'size', 'counts'}
                   for a in coco['annotations'])
    else:
        assert all(isinstance(a['segmentation'], list)
                   for a in coco['annotations'])
        # the pole cuts the car in two: two polygons, one instance
        assert len(by_id[26000]['segmentation']) >= 2
        # COCO polygons have no holes: the bus is cut around the person
        bus = to_mask(by_id[28000]['segmentation'], H, W)
        assert not bus[120, 215] and bus[120, 170]


def test_nproc_is_capped_at_the_cores(monkeypatch):
    # macOS / Windows: no sched_getaffinity; cpu_count may be unknown
    monkeypatch.delattr(os, 'sched_getaffinity', raising=False)
    for count, cores in ((3, 3), (None, 1)):
        monkeypatch.setattr(os, 'cpu_count', lambda: count)
        assert conv.available_cores() == cores
    monkeypatch.setattr(conv, 'available_cores', lambda: 4)
    assert [resolve_nproc(n) for n in (0, 3, 4)] == [(4, None), (3, None),
                                                     (4, None)]
    assert resolve_nproc(9) == (4, '--nproc 9 is more than the 4 CPU cores '
                                'this process may use; using 4')
    assert error(resolve_nproc, -1, exc=ConversionError) == (
        '--nproc must be >= 0 (0: one per core), got -1')


def _jpeg():
    Image.new('RGB', (W, H)).save(buf := io.BytesIO(), 'JPEG')
    return buf.getvalue()


def _png_header(width, height):
    """An RGB PNG's header and end, no pixels (all the converter may read)."""
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'IEND', b'')


def _overwrite(kind, suffix, data):
    def setup(root):
        write_frame(root)
        with open(osp.join(root, kind, 'val', 'lindau', FRAME + suffix),
                  'wb') as f:
            f.write(data)
    return setup


def _objects(**change):
    return lambda root: write_frame(root, car(**change), render=False)


POLYGONS = f'ROOT/gtFine/val/lindau/{FRAME}_gtFine_polygons.json'
LABELS = ('; expected a name from cityscapesscripts.helpers.labels (e.g. '
          '"car", "cargroup")')


@pytest.mark.parametrize('fmt,setup,message', [
    ('polygon', _objects(label='spaceship'),
     f"{POLYGONS}: unknown label 'spaceship'{LABELS}"),
    # 'truckgroop' minus 5 letters is 'truck': only NAME + 'group' is one
    ('polygon', _objects(label='truckgroop'),
     f"{POLYGONS}: unknown label 'truckgroop'{LABELS}"),
    ('polygon', _objects(polygon=[[1], [2], [3]]),
     f"{POLYGONS}: bad polygon for 'car' (list index out of range)"),
    ('polygon', lambda r: write_frame(r, size=(W + 2, H)),
     f'{POLYGONS} is {W + 2}x{H} but its image '),
    ('rle', lambda r: write_frame(r, size=(W, H + 1)),
     f'_gtFine_instanceIds.png is {W}x{H + 1} but its image '),
    # a declared size far from the image's: refused before it is drawn
    ('polygon', _overwrite('gtFine', '_gtFine_polygons.json', json.dumps(
        dict(imgWidth=100000, imgHeight=100000, objects=OBJECTS)).encode()),
     '_gtFine_polygons.json is 100000x100000 but its image '),
    ('polygon', _overwrite('leftImg8bit', '_leftImg8bit.png', _jpeg()),
     f'{FRAME}_leftImg8bit.png is a JPEG file, not a PNG; Cityscapes images '
     'are PNGs: re-download it, or convert it losslessly to PNG'),
    # a PNG header beyond PIL's decompression-bomb limit (89 Mpx)
    ('rle', _overwrite('leftImg8bit', '_leftImg8bit.png',
                       _png_header(12000, 8000)),
     f'{FRAME}_leftImg8bit.png declares 12000x8000 pixels, more than '
     '89478485 (PIL.Image.MAX_IMAGE_PIXELS); Cityscapes frames are '
     '2048x1024: fix or remove the file'),
    ('bitmap', write_frame,
     "unknown mask format 'bitmap'; use polygon or rle"),
    ('polygon', _overwrite('gtFine', '_gtFine_polygons.json',
                           b'{"imgWidth": 320, "objects": ['),
     f'{POLYGONS} is not a Cityscapes polygon file (Expecting value: line 1 '
     'column 31 (char 30)); expected JSON with imgWidth, imgHeight and '
     'objects[{label, polygon}]'),
    ('polygon', _overwrite('leftImg8bit', '_leftImg8bit.png',
                           b'\x89PNG\r\n\x1a\nnot really'),
     f'cannot read image ROOT/leftImg8bit/val/lindau/{FRAME}_leftImg8bit.png'),
    ('rle', _overwrite('gtFine', '_gtFine_instanceIds.png', b'garbage'),
     'cannot read PNG ROOT/gtFine/val/lindau/'
     f'{FRAME}_gtFine_instanceIds.png: '),
])
def test_bad_frames_one_clear_message(tmp_path, monkeypatch, fmt, setup,
                                      message):
    def never(*args):
        raise AssertionError('a bad frame was drawn before it was refused')

    if 'declares' in message or 'but its image' in message:
        monkeypatch.setattr(conv, '_draw_objects', never)
    root = str(tmp_path / 'cs')
    setup(root)
    message = message.replace('ROOT', root)
    if 'but its image' in message:  # the image keeps the standard size
        Image.new('RGB', (W, H)).save(osp.join(
            root, 'leftImg8bit', 'val', 'lindau',
            FRAME + '_leftImg8bit.png'))
    got = error(convert_cityscapes, root, str(tmp_path / 'out'), ['val'],
                mask_format=fmt, progress=False, exc=ConversionError)
    assert message in got
    if 'but its image' in message:
        assert got.endswith(f'_leftImg8bit.png is {W}x{H}')
    assert not osp.exists(tmp_path / 'out')  # nothing written


def test_sizes_up_to_pils_bomb_limit_are_drawn(tmp_path):
    conv._check_size('a.png', (Image.MAX_IMAGE_PIXELS, 1))  # at the limit
    with pytest.raises(ConversionError, match='a.png declares 1x'):
        conv._check_size('a.png', (1, Image.MAX_IMAGE_PIXELS + 1))
    # a polygon file read on its own (no image to compare with) is bounded
    path = tmp_path / 'big_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=9000, imgHeight=11000,
                                    objects=OBJECTS)))
    assert error(conv.polygon_annotations, str(path), exc=ConversionError
                 ).startswith(f'{path} declares 9000x11000 pixels')


def test_bad_trees_one_clear_message(tmp_path):
    root, out = str(tmp_path / 'cs'), str(tmp_path / 'out')

    def fails(message, **kwargs):
        assert error(convert_cityscapes, root, out, progress=False,
                     exc=ConversionError, **kwargs) == message
        assert not osp.exists(out)

    fails(f'Cityscapes root {root} does not exist (expected a folder with '
          'leftImg8bit/ and gtFine/)', splits=['val'])
    write_frame(root)
    fails("unknown split(s) ['dev']; choose from ('train', 'val', 'test')",
          splits=['val', 'dev'])
    fails(f'{root}/leftImg8bit/train does not exist: expected the '
          'Cityscapes layout ROOT/leftImg8bit/train/CITY/*_leftImg8bit.png '
          '(unpack leftImg8bit_trainvaltest.zip into ROOT)')
    png = osp.join(root, 'gtFine', 'val', 'lindau',
                   FRAME + '_gtFine_instanceIds.png')
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(png)
    fails(f'{png}: expected a single-channel instance id image, got shape '
          f'({H}, {W}, 3)', splits=['val'], mask_format='rle')
    os.remove(png)
    fails(f'{root}/leftImg8bit/val/{IMAGE} has no annotation: expected '
          f'{png}', splits=['val'], mask_format='rle')
    # an annotation whose image is missing
    extra = osp.join(root, 'gtFine', 'val', 'lindau',
                     'lindau_000009_000019_gtFine_polygons.json')
    with open(extra, 'w') as f:
        f.write('{}')
    fails(f'{extra} has no image: expected {root}/leftImg8bit/val/lindau/'
          'lindau_000009_000019_leftImg8bit.png', splits=['val'])
    os.remove(extra)
    gt_dir = osp.join(root, 'gtFine', 'val')
    os.rename(gt_dir, gt_dir + '_')
    fails(f'{gt_dir} does not exist: expected ROOT/gtFine/val/CITY/'
          '*_gtFine_polygons.json (unpack gtFine_trainvaltest.zip into ROOT)',
          splits=['val'])
    os.rename(gt_dir + '_', gt_dir)
    os.remove(osp.join(root, 'leftImg8bit', 'val', IMAGE))
    fails(f'no *_leftImg8bit.png images under {root}/leftImg8bit/val',
          splits=['val'])
    for sub in ('gtFine', 'leftImg8bit'):
        os.rename(osp.join(root, sub), osp.join(root, sub + '_'))
        fails(f'{root}/{sub} is missing: a Cityscapes root holds '
              'leftImg8bit/ and gtFine/', splits=['val'])
        os.rename(osp.join(root, sub + '_'), osp.join(root, sub))


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_workers_give_what_one_process_gives(tmp_path, fmt):
    # 6 frames a split (light batches); each split its own results, the test
    # split as an image list
    root = str(tmp_path / 'cs')
    write_frame(root, copies=6)
    write_frame(root, split='test', size=(W // 2, H // 2), copies=6)
    one = convert_splits(root, ['val', 'test'], fmt, nproc=1, progress=False)
    two = convert_splits(root, ['val', 'test'], fmt, nproc=2, progress=False)
    assert two == one and one['val'] == _val(root, fmt)
    assert one['test'] == dict(one['val'], annotations=[], images=[
        dict(width=W // 2, height=H // 2, id=k, file_name=IMAGE.replace(
            '000000', f'{k:06d}')) for k in range(6)])
    assert len(one['val']['images']) == 6
    per_image = Counter(a['image_id'] for a in one['val']['annotations'])
    assert sorted(per_image) == list(range(6))  # copies: same objects
    assert len(set(per_image.values())) == 1 and per_image[0] > 5


def test_two_point_polygons_are_kept_as_cityscapesscripts_draws_them(
        tmp_path, caplog):
    root = str(tmp_path / 'cs')
    inst = write_frame(root, car(polygon=[[10, 120], [120, 180]]))
    with caplog.at_level('WARNING'):
        coco = _val(root)
    by_id = check_regions(coco['annotations'], inst)
    assert by_id[26000]['area'] > 0
    [record] = caplog.records
    # the converter's own logger: it can be silenced or routed by name
    assert record.name == 'citymask.datasets.cityscapes_converter'
    assert record.getMessage() == (
        f'note: 1 val objects have a polygon of 2 points (first in '
        f'{root}/gtFine/val/lindau/{FRAME}_gtFine_polygons.json); kept as '
        'the line of pixels cityscapesscripts draws for them in '
        '*_instanceIds.png')
    assert all('_two_points' not in a for a in coco['annotations'])


@pytest.mark.parametrize('points', [[[10, 10]], []])
def test_polygons_of_0_or_1_point_are_refused(tmp_path, points):
    path = tmp_path / 'a_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=points)])))
    ann = Annotation()
    ann.fromJsonFile(str(path))
    with pytest.raises(Exception):  # cityscapesscripts can't draw it either
        createInstanceImage(ann, 'ids')
    assert error(conv.polygon_annotations, str(path), exc=ConversionError) == (
        f"{path}: a 'car' object has a polygon of {len(points)} point(s); "
        'fix it or mark it "deleted": 1')


def test_an_unwritable_output_is_named_before_the_work(tmp_path):
    root = str(tmp_path / 'cs')
    write_frame(root)
    blocker = tmp_path / 'out'
    blocker.write_text('a file where the output folder should be')
    assert error(convert_cityscapes, root, str(blocker), ['val'],
                 progress=False) == (
        f'cannot write output {blocker}/instancesonly_filtered_gtFine_val'
        f'.json: {blocker} is a file, not a folder')
