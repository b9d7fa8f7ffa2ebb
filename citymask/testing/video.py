"""A short video from generated frames, for the inference tests and demo.

Example (what ``make demo`` runs)::

    python -m citymask.testing.video OUT.mp4 data/mini/leftImg8bit/val/*/*.png
"""
import argparse
import os.path as osp
from typing import Iterable, Sequence

import cv2
import numpy as np

from ..errors import CitymaskError
from ..inference import VideoOut


def write_video(frames: Iterable[np.ndarray], path: str,
                fps: float = 10.0) -> str:
    """Write BGR frames (all of the first one's size) as a video.

    ``path``'s extension is a preference: ``.mp4`` (mp4v) where OpenCV's
    FFmpeg writer works, else ``.avi`` (MJPG). Written atomically.

    Returns:
        The path written.
    """
    writer = None
    try:
        for frame in frames:
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = VideoOut(osp.splitext(path)[0], fps, size)
            if (frame.shape[1], frame.shape[0]) != size:
                raise CitymaskError(
                    f'frame of {frame.shape[1]}x{frame.shape[0]} in a '
                    f'{size[0]}x{size[1]} video')
            writer.write(frame)
    except BaseException:
        if writer is not None:
            writer.close(keep=False)
        raise
    if writer is None:
        raise CitymaskError('no frames to write')
    writer.close()
    return writer.path


def video_from_images(paths: Sequence[str], out: str,
                      fps: float = 10.0) -> str:
    """A video of image files (resized to the first one's size)."""
    def frames():
        size = None
        for p in paths:
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            if img is None:
                raise CitymaskError(f'cannot read image {p}')
            size = size or (img.shape[1], img.shape[0])
            yield cv2.resize(img, size) if img.shape[1::-1] != size else img

    return write_video(frames(), out, fps)


def main() -> None:
    from ..cli import exit_on_error

    @exit_on_error
    def run():
        parser = argparse.ArgumentParser(
            description='Write a video of image files.')
        parser.add_argument('out', help='video file (.mp4)')
        parser.add_argument('images', nargs='+')
        parser.add_argument('--fps', type=float, default=10.0)
        args = parser.parse_args()
        path = video_from_images(sorted(args.images), args.out, args.fps)
        print(f'wrote {path} ({len(args.images)} frames)')

    run()


if __name__ == '__main__':
    main()
