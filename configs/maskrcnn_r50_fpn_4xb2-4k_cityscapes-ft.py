# The fine-tune recipe on 4 GPUs x 2 images (8 per iteration).
_base_ = './maskrcnn_r50_fpn_1xb8-4k_cityscapes-ft.py'
train_dataloader = dict(batch_size=2)
