"""BoxMaskHead's masks against mmdet's FCNMaskHead paste, and BoxMasks in
mmdet's own callers that want full bitmaps."""
import json

import numpy as np
import pytest
import torch
from mmdet.evaluation import CocoMetric, DumpDetResults
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.structures.mask import encode_mask_results
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from citymask.evaluation.crops import crop_masks
from citymask.models.box_mask_head import BoxMaskHead
from citymask.models.box_masks import BoxMasks

H, W, N = 90, 150, 24
HEAD = dict(num_convs=0, in_channels=4, conv_out_channels=4, num_classes=3)


def predict(head_type, thr=0.5, rescale=True, device='cpu', n=N,
            class_agnostic=False):
    """Both heads' ``predict_by_feat`` on the same random mask logits and
    boxes (at the image borders, one of zero width, one of a pixel)."""
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(N, 2, generator=g) * torch.tensor([W - 2., H - 2.]) - 1
    boxes = torch.cat([xy, xy + torch.rand(N, 2, generator=g) * 80], 1)
    boxes[:4] = torch.tensor([[0., 0., W, H], [5., 5., 5., 30.],
                              [W - 1., H - 1., W, H], [10.3, 7.6, 11, 8]])
    boxes = torch.min(boxes.clamp(min=0), torch.tensor([W, H, W, H]))
    head = head_type(**HEAD, class_agnostic=class_agnostic).to(device)
    results = InstanceData(
        bboxes=boxes[:n].to(device) / 2 if rescale else boxes[:n].to(device),
        labels=torch.randint(0, 3, (n, ), generator=g).to(device),
        scores=torch.rand(n, generator=g).to(device))
    logits = torch.randn(n, 1 if class_agnostic else 3, 28, 28,
                         generator=g) * 4
    meta = dict(scale_factor=(0.5, 0.5) if rescale else (1.5, 1.5),
                ori_shape=(H, W))
    return head.predict_by_feat((logits.to(device), ), [results], [meta],
                                ConfigDict(mask_thr_binary=thr),
                                rescale=rescale)[0]


def compare(thr=0.5, rescale=True, device='cpu', **kwargs):
    """BoxMaskHead's results equal FCNMaskHead's, masks pasted whole."""
    ref = predict(FCNMaskHead, thr, rescale, device, **kwargs)
    got = predict(BoxMaskHead, thr, rescale, device, **kwargs)
    assert torch.equal(got.bboxes, ref.bboxes)  # rescaled in place too
    # mmdet's own: 0..255 maps, no boxes, a GPU under 0.5
    if thr < (0 if device == 'cpu' else 0.5) or len(ref) == 0:
        assert torch.equal(got.masks, ref.masks)
        return
    assert isinstance(got.masks, BoxMasks)
    assert got.masks.shape == tuple(ref.masks.shape)
    full = got.masks.numpy()
    assert full.dtype == bool and ref.masks.any()
    np.testing.assert_array_equal(full, ref.masks.cpu().numpy())
    return got, ref


@pytest.mark.parametrize('thr', [0.5, 0.3, 0.0, 0.95, -1])
@pytest.mark.parametrize('rescale', [True, False])
def test_masks_are_mmdets_paste(thr, rescale):
    compare(thr, rescale)


def test_class_agnostic_and_no_boxes():
    compare(class_agnostic=True)
    compare(n=0)


def test_instance_data_indexes_concatenates_and_encodes():
    got, ref = compare()
    for item in (got.scores > 0.5, torch.tensor([3, 0, 3]), slice(2, 9, 3),
                 got.scores > 2, 5):
        np.testing.assert_array_equal(got[item].masks.numpy(),
                                      ref[item].masks.numpy())
    both = InstanceData.cat([got[:5], got[5:]])
    np.testing.assert_array_equal(both.masks.numpy(), ref.masks.numpy())
    # the crops are on the host: numpy() / cpu() keep them
    assert got.numpy().masks is got.masks and got.cpu().masks is got.masks
    # the metric's and the results writer's crops
    assert got.masks.to_crops() == crop_masks(ref.masks.numpy())
    # full masks to crops and back
    boxed = BoxMasks.of(ref.masks.numpy())
    np.testing.assert_array_equal(boxed.numpy(), ref.masks.numpy())
    assert BoxMasks.of(got.masks) is got.masks
    # int indexes give encode_mask_results' RLE
    want = [dict(r, counts=r['counts'].decode())
            for r in encode_mask_results(ref.masks.numpy())]
    assert [got.masks[i] for i in range(len(got))] == want
    # iteration gives (H, W) masks, as mmdet's DetInferencer encodes them
    assert encode_mask_results(got.masks) == encode_mask_results(
        ref.masks.numpy())


def _sample(pred, img_id=0):
    return dict(img_id=img_id, ori_shape=(H, W), pred_instances=dict(
        bboxes=pred.bboxes, scores=pred.scores, labels=pred.labels,
        masks=pred.masks))


def test_coco_metric(tmp_path):
    """mmdet's CocoMetric (segm and bbox) gives the same JSON and numbers
    with BoxMasks as with mmdet's masks (ground truth: the masks)."""
    got, ref = compare()
    anns = [dict(bbox=b.tolist(), bbox_label=int(lab), ignore_flag=0,
                 mask=dict(r, counts=r['counts'].decode()))
            for b, lab, r in zip(ref.bboxes[::2], ref.labels[::2],
                                 encode_mask_results(ref.masks.numpy()[::2]))]
    out = {}
    for name, pred in (('got', got), ('ref', ref)):
        metric = CocoMetric(metric=['bbox', 'segm'],
                            outfile_prefix=str(tmp_path / name))
        metric.dataset_meta = dict(classes=('a', 'b', 'c'))
        metric.process({}, [dict(_sample(pred), instances=anns)])
        out[name] = metric.evaluate(1)
    assert out['got'] == out['ref'] and out['got']['coco/segm_mAP'] > 0
    with open(tmp_path / 'got.segm.json') as a, \
            open(tmp_path / 'ref.segm.json') as b:
        assert json.load(a) == json.load(b)


def test_dump_det_results_and_visualizer(tmp_path):
    from mmdet.visualization import DetLocalVisualizer
    got, ref = compare()
    dumped = []
    for pred in (got, ref):
        dump = DumpDetResults(out_file_path=str(tmp_path / 'out.pkl'))
        dump.process({}, [_sample(pred)])
        dumped.append(dump.results[0]['pred_instances']['masks'])
    assert dumped[0] == dumped[1]
    vis = DetLocalVisualizer()
    image = np.full((H, W, 3), 80, np.uint8)
    drawn = []
    for pred in (got.numpy(), ref.numpy()):
        np.random.seed(0)  # it jitters the colours
        drawn.append(vis._draw_instances(image, pred, ['a', 'b', 'c'], [
            (255, 0, 0), (0, 255, 0), (0, 0, 255)]))
    np.testing.assert_array_equal(*drawn)
    assert (drawn[0] != image).any()


def test_configs_use_it():
    from mmdet.registry import MODELS

    import citymask.register  # noqa: F401
    from citymask.config import load_config
    cfg = load_config('configs/mini/maskrcnn_r18_fpn_mini_cityscapes.py')
    assert cfg.model.roi_head.mask_head.type == 'BoxMaskHead'
    assert MODELS.get('BoxMaskHead') is BoxMaskHead
    # FCNMaskHead's weights: its checkpoints load
    assert BoxMaskHead(**HEAD).state_dict().keys() == FCNMaskHead(
        **HEAD).state_dict().keys()
