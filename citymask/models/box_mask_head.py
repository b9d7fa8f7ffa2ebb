"""mmdet's ``FCNMaskHead`` whose predicted masks stay box-sized."""
import numpy as np
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import (FCNMaskHead,
                                                             _do_paste_mask)
from mmdet.registry import MODELS

from .box_masks import BoxMasks


@MODELS.register_module()
class BoxMaskHead(FCNMaskHead):
    """``FCNMaskHead`` predicting box-sized :class:`BoxMasks`, not 100 full
    images (200 MB at 2048x1024), with mmdet's pixels; on a GPU mmdet's
    paste runs for ``mask_thr_binary`` < 0.5 (where pixels outside reach it).
    """

    def _predict_by_feat_single(self, mask_preds, bboxes, labels, img_meta,
                                rcnn_test_cfg, rescale=False,
                                activate_map=False):
        threshold = rcnn_test_cfg.mask_thr_binary
        if threshold < (0 if bboxes.device.type == 'cpu' else 0.5):
            return super()._predict_by_feat_single(
                mask_preds, bboxes, labels, img_meta, rcnn_test_cfg,
                rescale, activate_map)
        # as FCNMaskHead._predict_by_feat_single (mmdet 3.3) up to pasting
        scale_factor = bboxes.new_tensor(img_meta['scale_factor']).repeat(
            (1, 2))
        img_h, img_w = img_meta['ori_shape'][:2]
        mask_preds = (bboxes.new_tensor(mask_preds) if activate_map else
                      mask_preds.sigmoid())
        if rescale:  # in place: the results' boxes too
            bboxes /= scale_factor
        else:
            img_h = int(np.round(img_h * scale_factor[0, 1].item()))
            img_w = int(np.round(img_w * scale_factor[0, 0].item()))
        if not self.class_agnostic:
            mask_preds = mask_preds[range(len(mask_preds)), labels][:, None]
        crops, offsets = [], []
        for i in range(len(mask_preds)):  # one by one, as mmdet on the CPU
            crop, (ys, xs) = _do_paste_mask(mask_preds[i:i + 1],
                                            bboxes[i:i + 1], img_h, img_w)
            crops.append((crop[0] >= threshold).cpu().numpy())
            offsets.append((xs.start, ys.start))
        return BoxMasks(crops, offsets, (img_h, img_w))
