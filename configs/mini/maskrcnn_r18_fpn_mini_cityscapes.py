# The fine-tune recipe sized for 2 CPU cores: ResNet-18 + 64-channel FPN on
# 512x256 mini-Cityscapes frames (1/4 per side), the same 9 scale steps,
# COCO->Cityscapes surgery on load. Used by `make demo` and the tests.
_base_ = '../maskrcnn_r50_fpn_cityscapes_ft.py'

ch = 64
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=ch),
    rpn_head=dict(in_channels=ch, feat_channels=ch),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=ch),
        bbox_head=dict(in_channels=ch, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=ch),
        mask_head=dict(in_channels=ch, conv_out_channels=ch)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

data_root = 'data/mini_cityscapes/'
# the real scales divided by 4: short side 200..256, long side <= 512
train_scales = [(w // 4, h // 4) for w, h in _base_.train_scales]
test_scale = (512, 256)
# the base pipelines with these scales (`_base_` is the parsed base config)
train_pipeline, batch_scale_train_pipeline = (
    [dict(t, scales=train_scales) if 'scales' in t else t for t in p]
    for p in (_base_.train_pipeline, _base_.batch_scale_train_pipeline))
test_pipeline = [dict(t, scale=test_scale) if 'scale' in t else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(batch_size=2, num_workers=1, dataset=dict(
    data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root,
                                                  pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CityscapesInstanceMetric', seg_prefix=data_root + 'gtFine/val'),
    dict(type='CocoMetric', metric=['bbox', 'segm'], ann_file=data_root +
         'annotations/instancesonly_filtered_gtFine_val.json'),
]
test_evaluator = val_evaluator

# 300 iterations of 2 images; lr step at 3/4, as 3000 of 4000 in the recipe
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[225], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=200, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=2)
load_from = 'work_dirs/mini/coco_standin_cityscapes.pth'
