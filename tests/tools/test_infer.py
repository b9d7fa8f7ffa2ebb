"""tools/infer.py end to end on generated frames and a generated video, with
the mini config; predictions checked against mmdet's own single-image API
(``init_detector`` + ``inference_detector``)."""
import glob
import json
import os
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from citymask.classes import NAME_TO_LABEL_ID
from citymask.evaluation.submission import check_submission
from citymask.testing.video import write_video
from ..conftest import run_tool
from .conftest import CFG, fails, ok

SCORE_THR = 0.3


@pytest.fixture(scope='module')
def sharp_ckpt(mini_data, tmp_path_factory):
    """The stand-in Cityscapes checkpoint with a sharpened classifier: its
    random weights give every class ~1/9, this spreads the scores so that
    some instances pass a score threshold and few tie."""
    from citymask.checkpoint import load_checkpoint_file
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
    """mmdet's own single-image inference with the same weights."""
    from mmdet.apis import inference_detector, init_detector

    from citymask.checkpoint import load_checkpoint_file, split_checkpoint
    from citymask.config import load_config
    model = init_detector(load_config(CFG), None, device='cpu')
    model.load_state_dict(split_checkpoint(
        load_checkpoint_file(sharp_ckpt))[0])

    def predict(img):
        pred = inference_detector(model, img).pred_instances
        return pred[pred.scores >= SCORE_THR].numpy()

    return predict


def assert_same(result, ref):
    """A JSON result equals mmdet's prediction (scores >= SCORE_THR; those
    within float noise of it may be in one and not the other)."""
    from mmdet.datasets import CityscapesDataset
    classes = CityscapesDataset.METAINFO['classes']
    sure = SCORE_THR + 1e-3
    got = sorted((r for r in result['instances'] if r['score'] >= sure),
                 key=lambda r: -r['score'])
    order = np.argsort(-ref.scores, kind='stable')
    order = order[ref.scores[order] >= sure]
    assert len(got) == len(order) > 0
    for inst, i in zip(got, order):
        name = classes[int(ref.labels[i])]
        assert inst['label_name'] == name
        assert inst['category_id'] == NAME_TO_LABEL_ID[name]
        assert inst['score'] == pytest.approx(float(ref.scores[i]),
                                              abs=1e-4)
        x0, y0, x1, y1 = ref.bboxes[i]
        np.testing.assert_allclose(inst['bbox'], [x0, y0, x1 - x0, y1 - y0],
                                   atol=0.02)
        rle = dict(inst['segmentation'])
        rle['counts'] = rle['counts'].encode()
        mask = mask_utils.decode(rle).astype(bool)
        theirs = ref.masks[i]
        # the same pixels, up to float noise on the 0.5 boundary
        assert (mask != theirs).sum() <= 0.002 * mask.size


def _timing(stdout):
    line = [ln for ln in stdout.splitlines() if 'img/s' in ln]
    assert len(line) == 1, stdout
    stages = dict(part.rsplit(' ', 2)[:2] for part in
                  line[0].split('per image: ')[1].split(', '))
    return line[0], {k: float(v) for k, v in stages.items()}


def test_images(mini_data, sharp_ckpt, reference, tmp_path):
    _, data = mini_data
    images = osp.join(data, 'leftImg8bit', 'test')
    out = tmp_path / 'out'
    res = ok(run_tool('tools/infer.py', images, CFG, sharp_ckpt, '--out',
                      str(out), '--batch-size', '3', '--score-thr',
                      str(SCORE_THR), '--cityscapes-format'))
    line, ms = _timing(res.stdout)
    print(line)
    assert line.startswith('4 images in ')
    assert set(ms) == {'read', 'model', 'draw', 'write'}
    assert ms['draw'] < ms['model']  # drawing does not dominate
    inputs = sorted(glob.glob(osp.join(images, '*', '*.png')))
    for path in inputs:
        rel = osp.relpath(path, images)
        overlay = cv2.imread(str(out / 'vis' / (rel[:-4] + '.jpg')))
        image = cv2.imread(path)
        assert overlay.shape == image.shape
        assert (overlay != image).any()
        with open(out / 'preds' / (rel[:-4] + '.json')) as f:
            result = json.load(f)
        assert result['file_name'] == path
        assert (result['height'], result['width']) == image.shape[:2]
        # batched (3 + 1 images) = mmdet's one-image inference
        assert_same(result, reference(path))
    # the official format of Cityscapes-named frames: a valid submission
    report = check_submission(str(out / 'cityscapes'), images)
    assert report.ok, report.problems
    assert report.pred_files == 4
    assert not glob.glob(str(out / '**' / '*.tmp*'), recursive=True)


def test_overlay_palette_and_labels():
    from mmdet.datasets import CityscapesDataset

    from citymask.inference import draw_predictions
    meta = CityscapesDataset.METAINFO
    palette = [tuple(c[::-1]) for c in meta['palette']]  # RGB -> BGR
    image = np.full((64, 128, 3), 100, np.uint8)
    masks = np.zeros((2, 64, 128), bool)
    masks[0, 20:40, 10:50] = True  # a car
    masks[1, 30:60, 80:120] = True  # a person, under the threshold
    pred = dict(labels=np.array([2, 0]), scores=np.array([0.9, 0.1]),
                boxes=np.array([[10, 20, 49, 39], [80, 30, 119, 59]],
                               np.float32), masks=masks)
    out = draw_predictions(image, pred, meta['classes'], palette,
                           score_thr=0.3)
    assert meta['classes'][2] == 'car'
    car = np.array(meta['palette'][2][::-1])
    # inside the mask (off the box outline and label): half image, half car
    np.testing.assert_allclose(out[33:38, 20:45].reshape(-1, 3),
                               np.broadcast_to((100 + car) / 2, (125, 3)),
                               atol=1)
    # the box outline in the car colour
    assert (out[39, 20:45] == car).all()
    # below the threshold: nothing drawn; the image itself is untouched
    assert (out[:, 75:] == 100).all()
    assert (image == 100).all()
    # the label: white text on a car-coloured box above the instance
    label = out[:20, 10:60]
    assert (label == car).all(-1).sum() > 100
    assert (label > 200).all(-1).sum() > 10


def test_find_inputs(tmp_path):
    from citymask.errors import CitymaskError
    from citymask.inference import find_inputs
    for name in ('a.png', 'sub/b.JPG', 'out/vis/a.jpg', 'notes.txt',
                 'clip.mp4'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'x')
    # a folder: its images, recursively, not those of the output folder
    found = find_inputs(str(tmp_path), exclude=str(tmp_path / 'out'))
    assert found.names == ['a.png', 'sub/b.JPG'] and found.video is None
    assert found.images == [str(tmp_path / n) for n in found.names]
    # a glob: names below its fixed part
    found = find_inputs(str(tmp_path / '**' / '*.*'))
    assert found.names == ['a.png', 'out/vis/a.jpg', 'sub/b.JPG']
    # a file: an image, or a video by its extension
    assert find_inputs(str(tmp_path / 'a.png')).names == ['a.png']
    found = find_inputs(str(tmp_path / 'clip.mp4'))
    assert found.video == str(tmp_path / 'clip.mp4') and not found.images
    with pytest.raises(CitymaskError, match='does not exist'):
        find_inputs(str(tmp_path / 'nothing'))
    with pytest.raises(CitymaskError, match='no images'):
        find_inputs(str(tmp_path / '*.txt'))


def test_json_masks_are_pycocotools_rle():
    from citymask.inference import coco_rle, prediction_json
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 50, 70), bool)
    masks[0, 5:20, 10:40] = rng.random((15, 30)) > 0.3
    masks[1, 49, 69] = True  # a corner pixel
    for m in masks:  # (the third is empty)
        assert coco_rle(m) == mask_utils.encode(
            np.asfortranarray(m[:, :, None].astype(np.uint8)))[0]
    pred = dict(labels=np.array([7, 1, 0]), scores=np.array([0.9, 0.5, 0.2]),
                boxes=np.array([[10, 5, 40, 20], [69, 49, 70, 50],
                                [0, 0, 1, 1]], np.float32), masks=masks)
    from mmdet.datasets import CityscapesDataset
    classes = CityscapesDataset.METAINFO['classes']
    label_ids = [NAME_TO_LABEL_ID[c] for c in classes]
    result = prediction_json(pred, 'a.png', label_ids, classes, 0.3)
    assert (result['height'], result['width']) == (50, 70)
    first, second = result['instances']  # the third is under 0.3
    assert (first['label_name'], first['category_id']) == ('bicycle', 33)
    assert (second['label_name'], second['category_id']) == ('rider', 25)
    assert first['bbox'] == [10, 5, 30, 15]
    for inst, m in zip(result['instances'], masks):
        rle = dict(inst['segmentation'], counts=inst['segmentation'][
            'counts'].encode())
        assert (mask_utils.decode(rle) == m).all()
    # plain JSON
    assert json.loads(json.dumps(result)) == result


def test_video(mini_data, sharp_ckpt, reference, tmp_path):
    _, data = mini_data
    frames = [cv2.resize(cv2.imread(p), (256, 128)) for p in sorted(
        glob.glob(osp.join(data, 'leftImg8bit', 'val', '*', '*.png')))[:5]]
    video = write_video(frames, str(tmp_path / 'drive.mp4'), fps=5)
    assert video.endswith('.mp4')  # mp4v works with this OpenCV
    out = tmp_path / 'out'
    res = ok(run_tool('tools/infer.py', video, CFG, sharp_ckpt, '--out',
                      str(out), '--batch-size', '4', '--score-thr',
                      str(SCORE_THR)))
    assert _timing(res.stdout)[0].startswith('5 images in ')
    written = str(out / 'vis' / 'drive.mp4')
    assert f'video: {written}' in res.stdout
    cap = cv2.VideoCapture(written)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    annotated = []
    while True:
        got, frame = cap.read()
        if not got:
            break
        annotated.append(frame)
    assert len(annotated) == 5 and annotated[0].shape == (128, 256, 3)
    jsons = sorted(glob.glob(str(out / 'preds' / 'drive' / '*.json')))
    assert [osp.basename(p) for p in jsons] == [
        f'drive_{i:06d}.json' for i in range(5)]
    # each frame as the tool decoded it, through mmdet's own inference
    cap = cv2.VideoCapture(video)
    for i, path in enumerate(jsons):
        frame = cap.read()[1]
        with open(path) as f:
            result = json.load(f)
        assert result['file_name'] == f'{video}#{i}'
        assert_same(result, reference(frame))


def test_bad_inputs(mini_data, sharp_ckpt, tmp_path):
    root, data = mini_data
    out = str(tmp_path / 'out')
    (tmp_path / 'empty').mkdir()
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video at all' * 100)
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    image = sorted(glob.glob(osp.join(data, 'leftImg8bit', 'test', '*',
                                      '*.png')))[0]
    cases = [
        ((str(tmp_path / 'missing'), CFG, sharp_ckpt), 'does not exist'),
        ((str(tmp_path / 'empty'), CFG, sharp_ckpt), 'no images'),
        ((str(broken), CFG, sharp_ckpt), 'cannot open video'),
        ((image, CFG, str(tmp_path / 'none.pth')), 'not found'),
        # a COCO checkpoint for a Cityscapes config
        ((image, CFG, osp.join(root, 'standin.pth')), 'tools/surgery.py'),
    ]
    for args, message in cases:
        fails(run_tool('tools/infer.py', *args, '--out', out), message)
    assert not osp.exists(osp.join(out, 'vis'))  # no work was done
    fails(run_tool('tools/infer.py', image, CFG, sharp_ckpt, '--out',
                   str(blocker / 'sub')), 'cannot write output folder (--out)')


def test_unreadable_image_keeps_what_was_written(mini_data, sharp_ckpt,
                                                 tmp_path, capsys):
    """In process (the one-line exit is tested above): the progress bar, and
    a broken image that stops the run after the outputs of the one before.
    """
    from citymask.errors import CitymaskError
    from citymask.inference import run_inference
    _, data = mini_data
    folder = tmp_path / 'frames'
    folder.mkdir()
    good = sorted(glob.glob(osp.join(data, 'leftImg8bit', 'test', '*',
                                     '*.png')))[0]
    (folder / 'a.png').write_bytes(open(good, 'rb').read())
    (folder / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    out = tmp_path / 'out'
    with pytest.raises(CitymaskError, match=r'cannot read image .*b\.png'):
        run_inference(str(folder), CFG, sharp_ckpt, str(out), progress=True)
    err = capsys.readouterr().err
    assert '1/2' in err and 'img/s' in err
    assert cv2.imread(str(out / 'vis' / 'a.jpg')).shape == (256, 512, 3)
    with open(out / 'preds' / 'a.json') as f:
        assert json.load(f)['width'] == 512
    assert sorted(os.listdir(out / 'vis')) == ['a.jpg']
