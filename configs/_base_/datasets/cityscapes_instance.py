# Cityscapes instances, the Mask R-CNN paper's recipe (maskrcnn-benchmark
# e2e_mask_rcnn_R_50_FPN_1x_cityscapes): train short side 800..1024 (step 32,
# 1024 twice, as there), long side <= 2048; test at 2048x1024. Annotations of
# tools/dataset_converters/cityscapes.py as vertices (poly2mask=False):
# resized/flipped as points, rasterised at 28x28 in the mask head only.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
backend_args = None

train_scales = [(2048, s) for s in (800, 832, 864, 896, 928, 960, 992, 1024,
                                    1024)]
test_scale = (2048, 1024)

train_pipeline = [
    dict(type='LoadCityscapesImage', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
# Several images per GPU (`*xb*` configs): one scale per batch (with
# `batch_sampler=dict(type='SeededBatchSampler')`), so no padding.
batch_scale_train_pipeline = [
    *train_pipeline[:2],
    dict(type='BatchChoiceResize', scales=train_scales, keep_ratio=True),
    *train_pipeline[3:]
]
# No LoadAnnotations: the metrics read the ground truth (test split: none)
test_pipeline = [
    dict(type='LoadCityscapesImage', backend_args=backend_args),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))
]

# The schedules count iterations: an infinite sampler, 1 image per GPU.
train_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='annotations/instancesonly_filtered_gtFine_train.json',
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='annotations/instancesonly_filtered_gtFine_val.json',
        data_prefix=dict(img='leftImg8bit/val/'), test_mode=True,
        pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = val_dataloader
# the test images (no public ground truth) `test.py --split test` reads
test_split = dict(
    ann_file='annotations/instancesonly_filtered_gtFine_test.json',
    data_prefix=dict(img='leftImg8bit/test/'))

val_evaluator = [
    dict(type='CityscapesInstanceMetric', seg_prefix=data_root + 'gtFine/val',
         backend_args=backend_args),
    dict(type='CocoMetric', metric=['bbox', 'segm'], ann_file=data_root +
         'annotations/instancesonly_filtered_gtFine_val.json',
         backend_args=backend_args),
]
test_evaluator = val_evaluator
