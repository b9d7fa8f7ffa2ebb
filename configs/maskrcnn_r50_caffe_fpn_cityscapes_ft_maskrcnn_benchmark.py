# Fine-tune from maskrcnn-benchmark's COCO e2e_mask_rcnn_R_50_FPN_1x.pth,
# the checkpoint the paper's Cityscapes recipe started from. Its ResNet is
# Caffe2-style: stride in the 1x1 conv, BGR input, Caffe2 pixel mean, std 1,
# frozen BN; its RoIAlign is not pixel-aligned and samples 2x2 per bin.
# Convert it first (all keys, background row moved, Cityscapes heads):
#   python tools/surgery.py e2e_mask_rcnn_R_50_FPN_1x.pth \
#       checkpoints/mrcnn-benchmark_coco_to_cityscapes.pth
_base_ = './maskrcnn_r50_fpn_cityscapes_ft.py'

model = dict(
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717],
                           std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    backbone=dict(style='caffe',
                  norm_cfg=dict(type='BN', requires_grad=False)),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(aligned=False, sampling_ratio=2)),
        mask_roi_extractor=dict(
            roi_layer=dict(aligned=False, sampling_ratio=2))))

load_from = 'checkpoints/mrcnn-benchmark_coco_to_cityscapes.pth'
