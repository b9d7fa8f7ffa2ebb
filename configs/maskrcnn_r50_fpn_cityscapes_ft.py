# Mask R-CNN R-50-FPN fine-tuned on Cityscapes from a COCO Mask R-CNN: the
# paper's best Cityscapes recipe (36.4 mask AP on val in the paper).
# 4000 iterations at 8 images each, lr 0.01 -> 0.001 at 3000.
# The COCO checkpoint's 81-class heads are turned into Cityscapes heads on
# load (shared classes' rows copied) by citymask's surgery hook.
_base_ = './maskrcnn_r50_fpn_cityscapes.py'

# The whole detector comes from the COCO checkpoint: no ImageNet download.
model = dict(backbone=dict(init_cfg=None))

max_iters = 4000
train_cfg = dict(max_iters=max_iters, val_interval=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[3000], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=1000))
# COCO heads -> Cityscapes heads when `load_from` is loaded (a checkpoint
# with Cityscapes heads, e.g. on --resume, passes through untouched).
custom_hooks = [
    dict(type='FiniteLossHook', interval=1),
    dict(type='CocoToCityscapesHook', rider_init='random'),
]

# mmdet model zoo COCO Mask R-CNN R-50-FPN 1x; a local file works too:
#   --cfg-options load_from=checkpoints/mask_rcnn_r50_fpn_1x_coco.pth
load_from = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'  # noqa
