"""The converter on a hand-made frame, against cityscapesscripts' renderer.

``*_instanceIds.png`` is drawn from ``*_polygons.json`` by cityscapesscripts'
``json2instanceImg.createInstanceImage``; this frame is drawn by it too, so
the regions each annotation must cover come from cityscapesscripts, not from
the converter. The frame has what real ones have: occlusion, a thing cut in
two by a pole, a person inside a bus (a hole), a licence plate (not drawn),
a group (crowd) partly outside the image, a fully hidden thing, a deleted
object, a caravan (drawn, not evaluated). Small and in process: fast enough
to run for every mutant (``tools/analysis_tools/mutation.sh converter``).
"""
import io
import json
import os
import os.path as osp
import shutil
import struct
import zlib
from collections import Counter

import numpy as np
import pytest
from cityscapesscripts.evaluation.instance import Instance
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import id2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from PIL import Image

from citymask.datasets import cityscapes_converter as conv
from citymask.datasets.cityscapes_converter import (convert_cityscapes,
                                                    convert_split,
                                                    convert_splits,
                                                    resolve_nproc)
from citymask.errors import CitymaskError, ConversionError
from .conftest import to_mask

W, H = 320, 240
FRAME = 'lindau_000000_000019'


def _box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


OBJECTS = [
    dict(label='road', polygon=_box(0, 150, 319, 239)),
    dict(label='car', polygon=_box(10, 120, 120, 180)),
    dict(label='pole', polygon=_box(60, 40, 66, 200)),  # cuts the car
    dict(label='license plate', polygon=_box(20, 160, 40, 170)),
    dict(label='bus', polygon=[[150, 60], [300, 60], [300, 170], [150, 170],
                               [150, 60]]),
    dict(label='person', polygon=_box(200, 90, 230, 150)),  # a hole in it
    dict(label='cargroup', polygon=_box(260, 180, 340, 235)),  # leaves it
    dict(label='rider', polygon=_box(0, 0, 50, 50), deleted=1),
    dict(label='truck', polygon=_box(100, 10, 130, 40)),
    dict(label='building', polygon=_box(90, 0, 140, 45)),  # hides it
    dict(label='caravan', polygon=_box(20, 190, 80, 230)),
    dict(label='bicycle', polygon=[[70, 200], [110, 185], [120, 230],
                                   [75, 235]]),  # over the caravan
    dict(label='motorcycle', polygon=_box(130, 190, 145, 200)),
    dict(label='persongroup', polygon=_box(240, 20, 280, 50)),
    dict(label='train', polygon=[[5, 60], [40, 55], [45, 100], [8, 95]]),
]


def write_frame(root, objects=OBJECTS, split='val', size=(W, H),
                render=True):
    """One frame: image, polygons and (``render``) the instance PNG
    cityscapesscripts draws from them."""
    width, height = size
    base = {k: osp.join(root, k, split, 'lindau') for k in
            ('leftImg8bit', 'gtFine')}
    for d in base.values():
        os.makedirs(d, exist_ok=True)
    Image.new('RGB', (width, height)).save(
        osp.join(base['leftImg8bit'], FRAME + '_leftImg8bit.png'))
    poly = osp.join(base['gtFine'], FRAME + '_gtFine_polygons.json')
    with open(poly, 'w') as f:
        json.dump(dict(imgWidth=width, imgHeight=height, objects=objects), f)
    if not render:  # cityscapesscripts can't draw it either
        return None
    ann = Annotation()
    ann.fromJsonFile(poly)
    inst = np.asarray(createInstanceImage(ann, 'ids'), np.int32)
    Image.fromarray(inst.astype(np.uint16)).save(
        osp.join(base['gtFine'], FRAME + '_gtFine_instanceIds.png'))
    return inst


def _regions(inst):
    """{instance id: cityscapesscripts Instance} of the evaluated labels."""
    out = {}
    for i in np.unique(inst):
        ref = Instance(inst, i)
        label = id2label[ref.labelID]
        if label.hasInstances and not label.ignoreInEval:
            out[int(ref.instID)] = ref
    return out


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_annotations_are_the_regions_cityscapesscripts_draws(tmp_path, fmt):
    inst = write_frame(str(tmp_path / 'cs'))
    out = convert_cityscapes(str(tmp_path / 'cs'), str(tmp_path / 'out'),
                             ['val'], mask_format=fmt, progress=False)
    assert out == {'val': str(tmp_path / 'out' /
                              'instancesonly_filtered_gtFine_val.json')}
    with open(out['val']) as f:
        coco = json.load(f)
    assert coco['images'] == [dict(
        width=W, height=H, id=0, file_name=f'lindau/{FRAME}_leftImg8bit.png',
        segm_file=f'lindau/{FRAME}_gtFine_instanceIds.png')]
    # cityscapesscripts' evaluated labels, in its order, ids as category ids
    evaluated = [lb for lb in id2label.values()
                 if lb.hasInstances and not lb.ignoreInEval]
    assert coco['categories'] == [dict(id=lb.id, name=lb.name)
                                  for lb in evaluated]
    regions = _regions(inst)
    # the hidden truck, the deleted rider and the caravan have none
    assert sorted(regions) == [24, 26, 24000, 26000, 28000, 31000, 32000,
                               33000]
    seen = []
    for k, ann in enumerate(coco['annotations']):
        assert ann['id'] == k + 1 and ann['image_id'] == 0
        mask = to_mask(ann['segmentation'], H, W)
        [inst_id] = np.unique(inst[mask])  # one region ...
        np.testing.assert_array_equal(mask, inst == inst_id)  # ... whole
        ref = regions[int(inst_id)]
        assert ann['category_id'] == ref.labelID
        assert ann['iscrowd'] == int(ref.instID < 1000)
        assert ann['area'] == ref.pixelCount
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max() + 1,
                                        ys.max() + 1]
        if fmt == 'rle':
            assert set(ann['segmentation']) == {'size', 'counts'}
        else:
            assert isinstance(ann['segmentation'], list)
        seen.append(int(inst_id))
    assert sorted(seen) == sorted(regions)  # every region once


def test_pieces_and_holes_are_polygons(tmp_path):
    inst = write_frame(str(tmp_path / 'cs'))
    coco = convert_split(str(tmp_path / 'cs'), 'val', progress=False)
    by_id = {}
    for ann in coco['annotations']:
        by_id[int(np.unique(inst[to_mask(ann['segmentation'], H, W)])[0])] = \
            ann
    # the pole cuts the car in two: two polygons, one instance
    assert len(by_id[26000]['segmentation']) >= 2
    # COCO polygons have no holes: the bus is cut around the person
    bus = to_mask(by_id[28000]['segmentation'], H, W)
    assert not bus[120, 215] and bus[120, 170]


def test_test_split_is_an_image_list(tmp_path):
    write_frame(str(tmp_path / 'cs'), split='test')
    coco = convert_split(str(tmp_path / 'cs'), 'test', progress=False)
    assert coco['images'] == [dict(
        width=W, height=H, id=0, file_name=f'lindau/{FRAME}_leftImg8bit.png')]
    assert coco['annotations'] == []


def test_progress_bar_changes_nothing(tmp_path, monkeypatch):
    import tqdm
    bars = []

    class Bar:  # records what the converter asks of tqdm's bar
        def __init__(self, **kwargs):
            self.kwargs, self.done, self.closed = kwargs, 0, False
            bars.append(self)

        def update(self, n):
            self.done += n

        def close(self):
            self.closed = True

    write_frame(str(tmp_path / 'cs'))
    quiet = convert_split(str(tmp_path / 'cs'), 'val', progress=False)
    assert bars == []
    monkeypatch.setattr(tqdm, 'tqdm', Bar)
    assert convert_split(str(tmp_path / 'cs'), 'val', progress=True) == quiet
    [bar] = bars
    # on terminals only (disable=None), counting frames, closed at the end
    assert bar.kwargs == dict(total=1, desc='converting', unit='img',
                              disable=None)
    assert bar.done == 1 and bar.closed


def test_nproc_is_capped_at_the_cores(monkeypatch):
    monkeypatch.setattr(conv, 'available_cores', lambda: 4)
    assert resolve_nproc(0) == (4, None)
    assert resolve_nproc(3) == (3, None)
    assert resolve_nproc(4) == (4, None)
    assert resolve_nproc(9) == (4, '--nproc 9 is more than the 4 CPU cores '
                                'this process may use; using 4')
    with pytest.raises(ConversionError) as e:
        resolve_nproc(-1)
    assert str(e.value) == '--nproc must be >= 0 (0: one per core), got -1'


def _objects(*changes):
    objs = [dict(o) for o in OBJECTS]
    for change in changes:
        change(objs)
    return objs


def _swap_label(label):
    def change(objs):
        objs[1]['label'] = label
    return change


def _one_point(objs):
    objs[1]['polygon'] = [[3, 4]]


def _jpeg():
    buf = io.BytesIO()
    Image.new('RGB', (W, H)).save(buf, 'JPEG')
    return buf.getvalue()


def _png_header(width, height):
    """The first chunks of an RGB PNG of that size, without its pixels (a
    header is all the converter may read of an image)."""
    def chunk(kind, data):
        body = kind + data
        return (struct.pack('>I', len(data)) + body +
                struct.pack('>I', zlib.crc32(body)))

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IEND', b'')


def _overwrite(root, kind, suffix, data):
    write_frame(root)
    path = osp.join(root, kind, 'val', 'lindau', FRAME + suffix)
    with open(path, 'wb') as f:
        f.write(data)


@pytest.mark.parametrize('fmt,setup,message', [
    ('polygon', lambda r: write_frame(r, _objects(_swap_label('spaceship')),
                                      render=False),
     "_gtFine_polygons.json: unknown label 'spaceship'; expected a name "
     'from cityscapesscripts.helpers.labels (e.g. "car", "cargroup")'),
    ('polygon', lambda r: write_frame(r, _objects(_one_point), render=False),
     "_gtFine_polygons.json: a 'car' object has a polygon of 1 point(s); "
     'fix it or mark it "deleted": 1'),
    ('polygon', lambda r: write_frame(r, size=(W + 2, H)),
     f'_gtFine_polygons.json is {W + 2}x{H} but its image '),
    ('rle', lambda r: write_frame(r, size=(W, H + 1)),
     f'_gtFine_instanceIds.png is {W}x{H + 1} but its image '),
    # a declared size far from the image's: refused before it is drawn
    ('polygon', lambda r: _overwrite(
        r, 'gtFine', '_gtFine_polygons.json',
        json.dumps(dict(imgWidth=100000, imgHeight=100000,
                        objects=OBJECTS)).encode()),
     '_gtFine_polygons.json is 100000x100000 but its image '),
    ('polygon', lambda r: _overwrite(r, 'leftImg8bit', '_leftImg8bit.png',
                                     _jpeg()),
     f'{FRAME}_leftImg8bit.png is a JPEG file, not a PNG; Cityscapes images '
     'are PNGs: re-download it, or convert it losslessly to PNG'),
    # a PNG header beyond PIL's decompression-bomb limit (89 Mpx)
    ('rle', lambda r: _overwrite(r, 'leftImg8bit', '_leftImg8bit.png',
                                 _png_header(12000, 8000)),
     f'{FRAME}_leftImg8bit.png declares 12000x8000 pixels, more than '
     '89478485 (PIL.Image.MAX_IMAGE_PIXELS); Cityscapes frames are '
     '2048x1024: fix or remove the file'),
    ('bitmap', write_frame,
     "unknown mask format 'bitmap'; use polygon or rle"),
    ('polygon', lambda r: _overwrite(r, 'gtFine', '_gtFine_polygons.json',
                                     b'{"imgWidth": 320, "objects": ['),
     '_gtFine_polygons.json is not a Cityscapes polygon file (Expecting '
     'value: line 1 column 31 (char 30)); expected JSON with imgWidth, '
     'imgHeight and objects[{label, polygon}]'),
    ('polygon', lambda r: _overwrite(r, 'leftImg8bit', '_leftImg8bit.png',
                                     b'\x89PNG\r\n\x1a\nnot really'),
     f'cannot read image ROOT/leftImg8bit/val/lindau/{FRAME}_leftImg8bit.png'),
    ('rle', lambda r: _overwrite(r, 'gtFine', '_gtFine_instanceIds.png',
                                 b'garbage'),
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
    with pytest.raises(ConversionError) as e:
        convert_cityscapes(root, str(tmp_path / 'out'), ['val'],
                           mask_format=fmt, progress=False)
    assert message in str(e.value)
    if 'but its image' in message:
        assert str(e.value).endswith(f'_leftImg8bit.png is {W}x{H}')
    assert not osp.exists(tmp_path / 'out')  # nothing written


def test_sizes_up_to_pils_bomb_limit_are_drawn(tmp_path):
    conv._check_pixels((Image.MAX_IMAGE_PIXELS, 1), 'a.png')  # at the limit
    with pytest.raises(ConversionError, match='a.png declares 1x'):
        conv._check_pixels((1, Image.MAX_IMAGE_PIXELS + 1), 'a.png')
    # a polygon file read on its own (no image to compare with) is bounded
    path = tmp_path / 'big_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=9000, imgHeight=11000,
                                    objects=OBJECTS)))
    with pytest.raises(ConversionError) as e:
        conv.polygon_annotations(str(path))
    assert str(e.value).startswith(f'{path} declares 9000x11000 pixels')


def test_bad_trees_one_clear_message(tmp_path):
    root = str(tmp_path / 'cs')
    out = str(tmp_path / 'out')

    def fails(message, **kwargs):
        with pytest.raises(ConversionError) as e:
            convert_cityscapes(root, out, progress=False, **kwargs)
        assert str(e.value) == message
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
    fails(f'{root}/leftImg8bit/val/lindau/{FRAME}_leftImg8bit.png has no '
          f'annotation: expected {png}', splits=['val'], mask_format='rle')
    img = osp.join(root, 'leftImg8bit', 'val', 'lindau',
                   FRAME + '_leftImg8bit.png')
    os.remove(img)
    fails(f'no *_leftImg8bit.png images under {root}/leftImg8bit/val',
          splits=['val'])
    for sub in ('gtFine', 'leftImg8bit'):
        os.rename(osp.join(root, sub), osp.join(root, sub + '_'))
        fails(f'{root}/{sub} is missing: a Cityscapes root holds '
              'leftImg8bit/ and gtFine/', splits=['val'])
        os.rename(osp.join(root, sub + '_'), osp.join(root, sub))


def test_missing_partners_named(tmp_path):
    root = tmp_path / 'cs'
    write_frame(str(root))
    gt_dir = root / 'gtFine' / 'val'
    os.rename(gt_dir, root / 'gtFine' / 'val_')
    with pytest.raises(ConversionError) as e:
        convert_split(str(root), 'val', progress=False)
    assert str(e.value) == (
        f'{gt_dir} does not exist: expected ROOT/gtFine/val/CITY/'
        '*_gtFine_polygons.json (unpack gtFine_trainvaltest.zip into ROOT)')
    os.rename(root / 'gtFine' / 'val_', gt_dir)
    # an annotation whose image is missing
    extra = gt_dir / 'lindau' / 'lindau_000009_000019_gtFine_polygons.json'
    extra.write_text('{}')
    with pytest.raises(ConversionError) as e:
        convert_split(str(root), 'val', progress=False)
    assert str(e.value) == (
        f'{extra} has no image: expected {root}/leftImg8bit/val/lindau/'
        'lindau_000009_000019_leftImg8bit.png')


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_workers_give_what_one_process_gives(tmp_path, fmt):
    root = str(tmp_path / 'cs')
    for split in ('val', 'test'):
        write_frame(root, split=split)
        for k in range(1, 6):  # more frames: batches of light tasks
            for sub in ('leftImg8bit', 'gtFine'):
                folder = osp.join(root, sub, split, 'lindau')
                for name in os.listdir(folder):
                    if name.startswith(FRAME):
                        shutil.copy(osp.join(folder, name), osp.join(
                            folder, name.replace('000000', f'00000{k}')))
    one = convert_splits(root, ['val', 'test'], fmt, nproc=1, progress=False)
    two = convert_splits(root, ['val', 'test'], fmt, nproc=2, progress=False)
    assert two == one
    assert len(one['val']['images']) == len(one['test']['images']) == 6
    per_image = Counter(a['image_id'] for a in one['val']['annotations'])
    assert sorted(per_image) == list(range(6))  # copies: same objects
    assert len(set(per_image.values())) == 1 and per_image[0] > 5


def _same_regions(coco, inst):
    """Every annotation is one whole region of cityscapesscripts' instance
    image ``inst``, every evaluated region has one; returns them by id."""
    regions, by_id = _regions(inst), {}
    for ann in coco['annotations']:
        mask = to_mask(ann['segmentation'], *inst.shape)
        [inst_id] = np.unique(inst[mask])
        np.testing.assert_array_equal(mask, inst == inst_id)
        assert ann['area'] == regions[int(inst_id)].pixelCount
        by_id[int(inst_id)] = ann
    assert sorted(by_id) == sorted(regions)
    return by_id


@pytest.mark.parametrize('fmt', ['polygon', 'rle'])
def test_things_on_the_image_border_and_unlabeled_cover(tmp_path, fmt):
    # pixels in row / column 0 belong to the thing (the crop around a
    # polygon must not start before 0, nor after it); an 'unlabeled'
    # polygon (label id 0) is drawn too, in the background colour: it
    # erases what it covers, as in the instance PNG
    objects = [
        dict(label='car', polygon=_box(0, 0, 40, 30)),
        dict(label='unlabeled', polygon=_box(20, 10, 60, 20)),
        dict(label='person', polygon=_box(50, 20, 63, 47)),
        dict(label='bicyclegroup', polygon=[[0, 47], [10, 40], [20, 47]]),
    ]
    inst = write_frame(str(tmp_path / 'cs'), objects, size=(64, 48))
    coco = convert_split(str(tmp_path / 'cs'), 'val', fmt, progress=False)
    by_id = _same_regions(coco, inst)
    assert sorted(by_id) == [33, 24000, 26000]
    assert by_id[26000]['bbox'][:2] == [0.0, 0.0]
    assert by_id[24000]['bbox'][2:] == [64.0 - 50, 48.0 - 20]
    # the unlabeled band cut the car: fewer pixels than its box
    assert by_id[26000]['area'] < 41 * 31


def test_a_misspelt_group_is_refused_not_guessed(tmp_path):
    # 'truckgroop' minus 5 letters is 'truck': only a known name + 'group'
    # is a group
    root = str(tmp_path / 'cs')
    write_frame(root, _objects(_swap_label('truckgroop')), render=False)
    with pytest.raises(ConversionError) as e:
        convert_split(root, 'val', progress=False)
    assert str(e.value).endswith(
        "_gtFine_polygons.json: unknown label 'truckgroop'; expected a name "
        'from cityscapesscripts.helpers.labels (e.g. "car", "cargroup")')


def test_an_undrawable_polygon_is_named(tmp_path):
    root = str(tmp_path / 'cs')
    write_frame(root, _objects(
        lambda objs: objs[1].update(polygon=[[1], [2], [3]])), render=False)
    with pytest.raises(ConversionError) as e:
        convert_split(root, 'val', progress=False)
    poly = osp.join(root, 'gtFine', 'val', 'lindau',
                    FRAME + '_gtFine_polygons.json')
    assert str(e.value) == (f"{poly}: bad polygon for 'car' (list index out "
                            'of range)')


def test_two_point_note_names_the_first_file(tmp_path, caplog):
    root = str(tmp_path / 'cs')
    write_frame(root, _objects(
        lambda objs: objs[1].update(polygon=[[10, 120], [120, 180]])))
    with caplog.at_level('WARNING'):
        coco = convert_split(root, 'val', progress=False)
    poly = osp.join(root, 'gtFine', 'val', 'lindau',
                    FRAME + '_gtFine_polygons.json')
    [record] = caplog.records
    # the converter's own logger: it can be silenced or routed by name
    assert record.name == 'citymask.datasets.cityscapes_converter'
    assert record.getMessage() == (
        f'note: 1 val objects have a polygon of 2 points (first in {poly}); '
        'kept as the line of pixels cityscapesscripts draws for them in '
        '*_instanceIds.png')
    assert all('_two_points' not in a for a in coco['annotations'])


def test_each_split_gets_its_own_frames(tmp_path):
    # splits are converted in one run: each must get its own results back
    root = str(tmp_path / 'cs')
    inst = write_frame(root)
    write_frame(root, split='test', size=(W // 2, H // 2))
    out = convert_splits(root, ['val', 'test'], progress=False)
    assert [im['width'] for im in out['val']['images']] == [W]
    assert out['test']['images'] == [dict(
        width=W // 2, height=H // 2, id=0,
        file_name=f'lindau/{FRAME}_leftImg8bit.png')]
    assert out['test']['annotations'] == []
    # polygons by default
    _same_regions(out['val'], inst)
    assert all(isinstance(a['segmentation'], list)
               for a in out['val']['annotations'])


def test_an_unwritable_output_is_named_before_the_work(tmp_path):
    root = str(tmp_path / 'cs')
    write_frame(root)
    blocker = tmp_path / 'out'
    blocker.write_text('a file where the output folder should be')
    with pytest.raises(CitymaskError) as e:
        convert_cityscapes(root, str(blocker), ['val'], progress=False)
    assert str(e.value) == (
        f'cannot write output {blocker}/instancesonly_filtered_gtFine_val'
        f'.json: {blocker} is a file, not a folder')


def test_two_point_polygons_are_kept_as_cityscapesscripts_draws_them(
        tmp_path, caplog):
    from citymask.datasets.cityscapes_converter import (_coco_dict,
                                                        polygon_annotations)
    path = tmp_path / 'a_000000_000000_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=[[10, 10], [40, 30]]),
        dict(label='person', polygon=[[5, 40], [20, 40], [20, 45]])])))
    size, anns = polygon_annotations(str(path))
    # the reference: the instance PNG cityscapesscripts draws from the file
    ann = Annotation()
    ann.fromJsonFile(str(path))
    inst = np.asarray(createInstanceImage(ann, 'ids'))
    car = [a for a in anns if a['category_id'] == 26]
    assert len(car) == 1
    assert car[0]['area'] == np.count_nonzero(inst == 26000) > 0
    with caplog.at_level('WARNING'):
        _coco_dict(str(tmp_path), 'train', [('x.png', str(path))],
                   [(dict(width=64, height=48), anns)])
    assert 'note: 1 train objects have a polygon of 2 points' in caplog.text
    assert all('_two_points' not in a for a in anns)  # not in the JSON


@pytest.mark.parametrize('points', [[[10, 10]], []])
def test_polygons_of_0_or_1_point_are_refused(tmp_path, points):
    from citymask.datasets.cityscapes_converter import polygon_annotations
    path = tmp_path / 'a_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=points)])))
    ann = Annotation()
    ann.fromJsonFile(str(path))
    with pytest.raises(Exception):  # cityscapesscripts can't draw it either
        createInstanceImage(ann, 'ids')
    with pytest.raises(ConversionError,
                       match=f"{path}: a 'car' object has a polygon of "
                       f'{len(points)} point'):
        polygon_annotations(str(path))
