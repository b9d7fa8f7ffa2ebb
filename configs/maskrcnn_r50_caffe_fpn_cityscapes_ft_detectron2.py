# Fine-tune from detectron2's COCO mask_rcnn_R_50_FPN_3x (model_final_f10217
# .pkl): Caffe2-style ResNet like maskrcnn-benchmark's, but detectron2's
# pixel mean and pixel-aligned RoIAlign (sampling_ratio 0).
# Convert it first:
#   python tools/surgery.py model_final_f10217.pkl \
#       checkpoints/detectron2_coco_to_cityscapes.pth
_base_ = './maskrcnn_r50_caffe_fpn_cityscapes_ft_maskrcnn_benchmark.py'

model = dict(
    data_preprocessor=dict(mean=[103.530, 116.280, 123.675]),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(aligned=True, sampling_ratio=0)),
        mask_roi_extractor=dict(
            roi_layer=dict(aligned=True, sampling_ratio=0))))

load_from = 'checkpoints/detectron2_coco_to_cityscapes.pth'
