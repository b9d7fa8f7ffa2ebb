# The fine-tune recipe (maskrcnn_r50_fpn_cityscapes_ft.py, 8 GPUs x 1 image)
# on 1 GPU x 8 images: same lr, iterations and schedule, 8 images per
# iteration. One scale per batch: no compute spent on padding.
_base_ = './maskrcnn_r50_fpn_cityscapes_ft.py'

train_pipeline = {{_base_.batch_scale_train_pipeline}}
train_dataloader = dict(batch_size=8,
                        batch_sampler=dict(type='SeededBatchSampler'),
                        dataset=dict(pipeline=train_pipeline))
