"""tools/infer.py and citymask.inference on generated frames and video with
the mini config; predictions checked against mmdet's ``DetInferencer``."""
import errno
import glob
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmdet.datasets import CityscapesDataset
from mmengine.structures import InstanceData

import citymask.inference as inference
from citymask.checkpoint import load_checkpoint_file, split_checkpoint
from citymask.classes import NAME_TO_LABEL_ID
from citymask.cli import os_error_line
from citymask.config import load_config
from citymask.errors import CitymaskError
from citymask.evaluation.submission import check_submission
from citymask.fileio import atomic_dir
from citymask.inference import (CityscapesInferencer, draw_predictions,
                                find_inputs, prediction_json, run_inference)
from ..conftest import run_tool
from .conftest import CFG, error, fails, ok

SCORE_THR = 0.3
META = CityscapesDataset.METAINFO
PALETTE = [tuple(c[::-1]) for c in META['palette']]  # RGB -> BGR
LABEL_IDS = [NAME_TO_LABEL_ID[c] for c in META['classes']]


def _pngs(data, split):
    return sorted(glob.glob(f'{data}/leftImg8bit/{split}/*/*.png'))


@pytest.fixture(scope='module')
def sharp_ckpt(mini_data, tmp_path_factory):
    """The stand-in Cityscapes checkpoint, its classifier sharpened (random
    weights give every class ~1/9): some scores pass a threshold, few tie."""
    root, _ = mini_data
    ckpt = load_checkpoint_file(osp.join(root, 'standin_cs.pth'))
    g = torch.Generator().manual_seed(0)
    for name in ('weight', 'bias'):
        key = f'roi_head.bbox_head.fc_cls.{name}'
        ckpt['state_dict'][key] = torch.randn(
            ckpt["state_dict"][key].shape, generator=g) * 0.1
    path = str(tmp_path_factory.mktemp('sharp') / 'sharp_cs.pth')
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope='module')
def reference(sharp_ckpt):
    """mmdet's own ``DetInferencer``, one image at a time, the same weights,
    its ``LoadImageFromFile`` and full-image mask paste (``FCNMaskHead``)."""
    from mmdet.apis import DetInferencer
    cfg = load_config(CFG)
    cfg.test_dataloader.dataset.pipeline[0] = dict(type='LoadImageFromFile')
    cfg.model.roi_head.mask_head.type = 'FCNMaskHead'
    inferencer = DetInferencer(cfg, None, 'cpu', show_progress=False)
    inferencer.model.load_state_dict(split_checkpoint(
        load_checkpoint_file(sharp_ckpt))[0])

    def predict(img):
        pred = inferencer(img, return_datasamples=True)['predictions'][0]
        pred = pred.pred_instances
        return pred[pred.scores >= SCORE_THR].numpy()

    return predict


def assert_same(result, ref):
    """A JSON result equals mmdet's prediction (scores >= SCORE_THR; those
    within float noise of it may be in one and not the other)."""
    sure = SCORE_THR + 1e-3
    got = sorted((r for r in result['instances'] if r['score'] >= sure),
                 key=lambda r: -r['score'])
    order = np.argsort(-ref.scores, kind='stable')
    order = order[ref.scores[order] >= sure]
    assert len(got) == len(order) > 0
    for inst, i in zip(got, order):
        name = META['classes'][int(ref.labels[i])]
        assert inst['label_name'] == name
        assert inst['category_id'] == NAME_TO_LABEL_ID[name]
        assert inst['score'] == pytest.approx(float(ref.scores[i]), abs=1e-4)
        x0, y0, x1, y1 = ref.bboxes[i]
        np.testing.assert_allclose(inst['bbox'], [x0, y0, x1 - x0, y1 - y0],
                                   atol=0.02)
        rle = dict(inst['segmentation'])
        rle['counts'] = rle['counts'].encode()
        mask = mask_utils.decode(rle).astype(bool)
        # the same pixels, up to float noise on the 0.5 boundary
        assert (mask != ref.masks[i]).sum() <= 0.002 * mask.size


def _no_temporaries(folder):  # of citymask.fileio
    return not [p for p in glob.glob(f'{folder}/**/.*', recursive=True)
                if p.endswith(('.tmp', '.old', '.partial'))]


def test_images(mini_data, sharp_ckpt, reference, tmp_path):
    frames = tmp_path / 'frames'
    shutil.copytree(osp.join(mini_data[1], 'leftImg8bit', 'test'), frames)
    # a hidden folder's images are no inputs
    (frames / '.cache').mkdir()
    shutil.copy(glob.glob(str(frames / '*' / '*.png'))[0], frames / '.cache')
    out = frames / 'out'  # inside the input folder
    args = ('tools/infer.py', str(frames), CFG, sharp_ckpt, '--out-dir',
            str(out), '--batch-size', '3', '--pred-score-thr',
            str(SCORE_THR), '--cityscapes-format')
    assert ok(run_tool(*args)).stdout.startswith('4 images in ')
    for path in sorted(glob.glob(str(frames / '*' / '*.png'))):
        rel = osp.relpath(path, frames)[:-4]
        overlay = cv2.imread(str(out / 'vis' / (rel + '.jpg')))
        image = cv2.imread(path)
        assert overlay.shape == image.shape and (overlay != image).any()
        result = json.loads((out / 'preds' / (rel + '.json')).read_text())
        assert result['file_name'] == path
        assert (result['height'], result['width']) == image.shape[:2]
        # batched (3 + 1 images) = mmdet's one-image inference
        assert_same(result, reference(path))
    # the official format of Cityscapes-named frames: a valid submission
    report = check_submission(str(out / 'cityscapes'), str(frames))
    assert report.ok and report.pred_files == 4, report.problems
    # again into the same folder: its own outputs are not read as inputs
    assert ok(run_tool(*args, '--overwrite')).stdout.startswith('4 images')
    assert len(glob.glob(str(out / 'vis' / '**' / '*.jpg'),
                         recursive=True)) == 4
    assert _no_temporaries(str(tmp_path))


def test_api_arrays(sharp_ckpt, reference, mini_data, tmp_path):
    """The inferencer takes what mmdet's does: a BGR array here."""
    img = cv2.imread(_pngs(mini_data[1], 'val')[0])
    inferencer = CityscapesInferencer(CFG, sharp_ckpt)
    res = inferencer(img, return_vis=True, out_dir=str(tmp_path),
                     no_save_pred=False)
    assert_same(res['predictions'][0], reference(img))
    vis = res['visualization'][0]
    assert vis.shape == img.shape and (vis != img).any()
    # mmdet's layout, arrays numbered
    assert cv2.imread(str(tmp_path / 'vis' / '00000000.jpg')).shape == (
        img.shape)
    with open(tmp_path / 'preds' / '00000000.json') as f:
        assert json.load(f) == res['predictions'][0]


def test_overlay_palette_and_labels():
    image = np.full((64, 128, 3), 100, np.uint8)
    masks = np.zeros((2, 64, 128), bool)
    masks[0, 20:40, 10:50] = True  # a car
    masks[1, 30:60, 80:120] = True  # a person, under the threshold
    pred = InstanceData(labels=np.array([2, 0]), scores=np.array([0.9, 0.1]),
                        bboxes=np.array([[10, 20, 49, 39], [80, 30, 119, 59]],
                                        np.float32), masks=masks)
    out = draw_predictions(image, pred, META['classes'], PALETTE,
                           score_thr=0.3)
    assert META['classes'][2] == 'car'
    car = np.array(PALETTE[2])
    # inside the mask (off the box outline and label): half image, half car
    np.testing.assert_allclose(out[33:38, 20:45].reshape(-1, 3),
                               np.broadcast_to((100 + car) / 2, (125, 3)),
                               atol=1)
    # the box outline in the car colour
    assert (out[39, 20:45] == car).all()
    # below the threshold: nothing drawn; the image itself is untouched
    assert (out[:, 75:] == 100).all() and (image == 100).all()
    # the label: white text on a car-coloured box above the instance
    label = out[:20, 10:60]
    assert (label == car).all(-1).sum() > 100
    assert (label > 200).all(-1).sum() > 10


def test_find_inputs(tmp_path):
    for name in ('a.png', 'sub/b.JPG', 'out/vis/a.jpg', '.cache/c.png',
                 'text/notes.txt', 'clip.mp4', 'dup/a.png'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'x')
    # a folder: its images, recursively, but for hidden folders and the
    # output folder; names below it, without extension
    images, videos = find_inputs([str(tmp_path)], exclude=str(
        tmp_path / 'out'))
    assert [i['name'] for i in images] == ['a', 'dup/a', 'sub/b']
    assert [i['img_path'] for i in images] == [
        str(tmp_path / n) for n in ('a.png', 'dup/a.png', 'sub/b.JPG')]
    assert videos == []
    # files: images by stem, videos by extension
    images, videos = find_inputs([str(tmp_path / 'a.png'),
                                  str(tmp_path / 'clip.mp4')])
    assert [i['name'] for i in images] == ['a']
    assert videos == [str(tmp_path / 'clip.mp4')]
    with pytest.raises(CitymaskError, match='written as a; rename'):
        find_inputs([str(tmp_path / 'a.png'), str(tmp_path / 'dup')])
    assert 'does not exist' in error(find_inputs, [str(tmp_path / 'nothing')])
    assert 'no images' in error(find_inputs, [str(tmp_path / 'text')])


def test_json_masks_are_pycocotools_rle():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 50, 70), bool)
    masks[0, 5:20, 10:40] = rng.random((15, 30)) > 0.3
    masks[1, 49, 69] = True  # a corner pixel
    pred = InstanceData(
        labels=np.array([7, 1, 0]), scores=np.array([0.9, 0.5, 0.2]),
        bboxes=np.array([[10, 5, 40, 20], [69, 49, 70, 50], [0, 0, 1, 1]],
                        np.float32), masks=masks)
    result = prediction_json(pred, 'a.png', LABEL_IDS, META['classes'], 0.3)
    for inst, m in zip(result['instances'], masks):  # pycocotools' own
        want = mask_utils.encode(np.asfortranarray(m[:, :, None].astype(
            np.uint8)))[0]
        assert inst['segmentation'] == dict(want, counts=want[
            'counts'].decode())
    assert (result['height'], result['width']) == (50, 70)
    first, second = result['instances']  # the third is under 0.3
    assert (first['label_name'], first['category_id']) == ('bicycle', 33)
    assert (second['label_name'], second['category_id']) == ('rider', 25)
    assert first['bbox'] == [10, 5, 30, 15]
    assert json.loads(json.dumps(result)) == result  # plain JSON


def test_video(mini_data, sharp_ckpt, reference, tmp_path):
    video = str(tmp_path / 'drive.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (256, 128))
    for p in _pngs(mini_data[1], 'val')[:5]:
        writer.write(cv2.resize(cv2.imread(p), (256, 128)))
    writer.release()
    out = tmp_path / 'out'
    assert ok(run_tool('tools/infer.py', video, CFG, sharp_ckpt, '--out-dir',
                       str(out), '--batch-size', '4', '--pred-score-thr',
                       str(SCORE_THR))).stdout.startswith('5 images in ')
    cap = cv2.VideoCapture(str(out / 'vis' / 'drive.mp4'))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    annotated = [f for ok, f in iter(cap.read, (False, None)) if ok]
    assert len(annotated) == 5 and annotated[0].shape == (128, 256, 3)
    jsons = sorted(glob.glob(str(out / 'preds' / 'drive' / '*.json')))
    assert [osp.basename(p) for p in jsons] == [
        f'drive_{i:06d}.json' for i in range(5)]
    # each frame as the tool decoded it, through mmdet's own inference
    cap = cv2.VideoCapture(video)
    for i, path in enumerate(jsons):
        frame = cap.read()[1]
        result = json.load(open(path))
        assert result['file_name'] == f'{video}#{i}'
        assert_same(result, reference(frame))


def test_bad_inputs_one_line(mini_data, sharp_ckpt, tmp_path):
    """One error each, nothing written (not a.png's outputs either: the folder
    is written whole); the tool: one line (COCO weights: shapes, surgery)."""
    root, data = mini_data
    out = str(tmp_path / 'out')
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video at all' * 100)
    fails(run_tool('tools/infer.py', str(broken), CFG, sharp_ckpt,
                   '--out-dir', out), 'cannot open video')
    image = _pngs(data, 'test')[0]
    line = fails(run_tool('tools/infer.py', image, CFG,
                          osp.join(root, 'standin.pth'), '--out-dir', out),
                 'tools/surgery.py')
    assert 'fc_cls.bias is (81,) in it, (9,) in the model' in line
    frames = _frames(data, tmp_path / 'frames', broken=True)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'old.txt').write_text('x')
    (tmp_path / 'a_file').write_text('x')
    cases = [
        ((str(tmp_path / 'missing'),), {}, 'does not exist'),
        ((str(tmp_path / 'empty'),), {}, 'no images'),
        ((image,), dict(out_dir=str(tmp_path / 'full')), 'not empty'),
        ((str(tmp_path / 'full' / 'old.txt'),),
         dict(out_dir=str(tmp_path / 'full'), overwrite=True), 'inside'),
        ((image,), dict(out_dir=str(tmp_path / 'a_file' / 'sub')),
         'cannot write --out-dir'),
        ((image,), dict(batch_size=0), '--batch-size'),
        ((image,), dict(device='nonsense'), '--device nonsense'),
        ((str(frames),), {}, r'cannot read image .*b\.png'),
        ((image,), dict(checkpoint=str(tmp_path / 'none.pth')),
         'does not exist'),
    ]
    for inputs, kwargs, message in cases:
        kwargs.setdefault('out_dir', out)
        with pytest.raises(CitymaskError, match=message):
            run_inference(inputs, CFG, kwargs.pop('checkpoint', sharp_ckpt),
                          **kwargs)
    assert not osp.exists(out) and _no_temporaries(str(tmp_path))
    assert os.listdir(tmp_path / 'full') == ['old.txt']


def _frames(data, folder, broken=False):
    folder.mkdir()
    for name, path in zip('ab', _pngs(data, 'test')):
        shutil.copy(path, folder / f'{name}.png')
    if broken:
        (folder / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    return folder


def test_full_disk_leaves_the_old_folder(mini_data, sharp_ckpt, tmp_path,
                                         monkeypatch):
    """Its message "nothing was written there" holds: the old folder stays."""
    frames = _frames(mini_data[1], tmp_path / 'frames')
    out = tmp_path / 'out'
    with atomic_dir(str(out)) as folder:  # an earlier run's output
        open(osp.join(folder, 'old.txt'), 'w').write('old')
    written = []

    def dump(obj, path):
        os.makedirs(osp.dirname(path), exist_ok=True)
        if written:  # the second image's JSON: the disk is full
            raise OSError(errno.ENOSPC, 'No space left on device', path)
        written.append(path)
        open(path, 'w').write(json.dumps(obj))

    monkeypatch.setattr(inference, 'dump_json_atomic', dump)
    with pytest.raises(OSError) as e:
        inference.run_inference([str(frames)], CFG, sharp_ckpt, str(out),
                                overwrite=True)
    assert len(written) == 1
    line = os_error_line(e.value)
    assert line.startswith(f'no space left on {out} ') and (
        'nothing was written there') in line
    assert os.listdir(out) == ['old.txt'] and _no_temporaries(str(tmp_path))


def test_box_masks_draw_and_json_as_full_masks():
    """BoxMaskHead's masks give the overlay and JSON of mmdet's full ones."""
    from ..models.test_box_mask_head import H, W, compare
    got, ref = (p.numpy() for p in compare())
    image = np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8)
    np.testing.assert_array_equal(
        draw_predictions(image, got, META['classes'], PALETTE),
        draw_predictions(image, ref, META['classes'], PALETTE))
    assert prediction_json(got, 'a.png', LABEL_IDS, META['classes']) == \
        prediction_json(ref, 'a.png', LABEL_IDS, META['classes'])
