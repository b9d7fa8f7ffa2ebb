# Mask R-CNN R-50-FPN on Cityscapes from ImageNet: the paper's
# Cityscapes-only recipe (31.5 mask AP on val in the paper).
# 24k iterations at 8 images each (1 per GPU x 8 GPUs), lr 0.01 -> 0.001 at
# 18k, weight decay 1e-4, linear warm-up as in maskrcnn-benchmark.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/datasets/cityscapes_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['citymask.register'],
                      allow_failed_imports=False)

model = dict(roi_head=dict(
    bbox_head=dict(num_classes=8),
    mask_head=dict(type='BoxMaskHead', num_classes=8)))

max_iters = 24000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
    type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[18000], gamma=0.1)
]
# lr 0.01 is for 8 images per iteration; `tools/train.py --auto-scale-lr`
# rescales it linearly for other GPU counts.
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000,
                    max_keep_ckpts=3, save_best='cityscapes/mAP',
                    rule='greater'))
custom_hooks = [dict(type='FiniteLossHook', interval=1)]
log_processor = dict(by_epoch=False)
