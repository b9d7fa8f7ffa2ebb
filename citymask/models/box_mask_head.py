"""mmdet's ``FCNMaskHead`` whose predicted masks stay box-sized."""
import numpy as np
import torch
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import (FCNMaskHead,
                                                             _do_paste_mask)
from mmdet.registry import MODELS

from .box_masks import BoxMasks


@MODELS.register_module()
class BoxMaskHead(FCNMaskHead):
    """``FCNMaskHead`` (same weights and training) whose predictions are
    :class:`~citymask.models.box_masks.BoxMasks`: each mask is pasted only
    into its box (+1 pixel, clipped), as mmdet pastes it on the CPU, not
    into a full image (100 x 2048 x 1024 bools: 200 MB per image, to copy
    from a GPU and crop again). The pixels are mmdet's: on the CPU always;
    on a GPU, where mmdet samples the whole image, for ``mask_thr_binary``
    >= 0.5 (no pixel outside a box reaches 0.5); else mmdet's paste runs.
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
        for i in range(len(mask_preds)):
            crop, (ys, xs) = _do_paste_mask(mask_preds[i:i + 1],
                                            bboxes[i:i + 1], img_h, img_w)
            crops.append(crop[0] >= threshold)
            offsets.append((xs.start, ys.start))
        # to the host in one copy
        flat = torch.cat([c.reshape(-1) for c in crops]).cpu().numpy()
        ends = np.cumsum([c.numel() for c in crops])
        return BoxMasks([f.reshape(c.shape) for f, c in zip(
            np.split(flat, ends[:-1]), crops)], offsets, (img_h, img_w))
