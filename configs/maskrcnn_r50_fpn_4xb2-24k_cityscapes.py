# The ImageNet recipe on 4 GPUs x 2 images (8 per iteration).
_base_ = './maskrcnn_r50_fpn_1xb8-24k_cityscapes.py'
train_dataloader = dict(batch_size=2)
