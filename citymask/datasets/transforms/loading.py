import cv2
import numpy as np
import pyspng
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS

from ...errors import CitymaskError


@TRANSFORMS.register_module()
class LoadCityscapesImage(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` (same arguments, same BGR pixels),
    local 8-bit colour PNGs decoded by pyspng (~25 ms a 2048x1024 frame,
    not OpenCV's ~40); an undecodable file raises a CitymaskError naming
    it, not mmcv's bare ``AssertionError`` in a dataloader worker."""

    def _fast_png(self, path: str):
        if (not path.endswith('.png') or '://' in path or self.backend_args
                or self.color_type != 'color' or self.file_client_args):
            return None
        with open(path, 'rb') as f:
            img = pyspng.load(f.read())
        if img.dtype != np.uint8:
            return None  # 16-bit: mmcv's conversion rules apply
        # BGR as mmcv's; RGB2BGR drops an alpha channel, as mmcv does
        code = cv2.COLOR_GRAY2BGR if img.ndim == 2 else cv2.COLOR_RGB2BGR
        return cv2.cvtColor(img, code)

    def transform(self, results: dict) -> dict:
        path = results.get('img_path')
        try:
            img = self._fast_png(path)
            if img is None:
                return super().transform(results)
        except Exception as e:
            reason = str(e).replace(f': {path}', '') or type(e).__name__
            raise CitymaskError(
                f'cannot read image {path} ({reason}); re-download it or '
                'remove it from the annotation file') from None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results
