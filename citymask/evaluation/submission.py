"""Check a Cityscapes instance-level submission before uploading it.

The benchmark server answers a faulty zip with "content does not match
specifications" and no detail. This checks what its evaluation script
(cityscapesscripts' ``evalInstanceLevelSemanticLabeling``: ``getPrediction``
and ``readPredInfo``) and the public format spec require, and lists every
problem at once:

* one prediction file ``CITY_SEQ_FRAME*.txt`` per test image, found
  anywhere in the folder or zip (an image without objects still needs its
  empty file), and no more than one;
* lines ``relative/mask.png labelID confidence``, three fields split by
  single spaces (the script splits on ``" "``: a blank line, a tab or a
  path with a space breaks it), mask paths relative and inside the
  results;
* masks that exist, are single-channel images (any non-zero pixel is the
  instance) and have their test image's size;
* label ids of the 8 evaluated classes (:data:`citymask.classes.LABEL_IDS`,
  not train ids), confidences that are finite numbers;
* no stray files (anything that is neither a prediction file nor a mask
  one of them names).

Only image headers are read, so a full 1525-image submission takes
seconds.
"""
import io
import math
import os
import os.path as osp
import posixpath
import re
import zipfile
from glob import glob
from typing import IO, Dict, List, Optional, Tuple

from ..classes import CLASSES, IMG_SUFFIX, LABEL_IDS
from ..errors import CitymaskError
from .results_format import frame_key

# The official script matches prediction files to images by
# ``"{city}_{seq}_{frame}*.txt"`` (fnmatch) anywhere under the results root.
_PRED_NAME = re.compile(r'^([^_/]+_\d+_\d+).*\.txt$')


class _Files:
    """The files of a results folder or zip, by relative POSIX path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._zip: Optional[zipfile.ZipFile] = None
        if osp.isdir(path):
            self.names = sorted(
                osp.relpath(osp.join(root, n), path).replace(os.sep, '/')
                for root, _, files in os.walk(path) for n in files)
        elif zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise CitymaskError(f'cannot read zip {path} ({e})') from None
            self.names = sorted(n for n in self._zip.namelist()
                                if not n.endswith('/'))
        elif osp.exists(path):
            raise CitymaskError(
                f'{path} is neither a results folder nor a zip file')
        else:
            raise CitymaskError(f'{path} does not exist')

    def open(self, name: str) -> IO[bytes]:
        if self._zip is not None:
            # PIL seeks; a deflated zip member can't, so read it (masks
            # are small)
            return io.BytesIO(self._zip.read(name))
        return open(osp.join(self.path, name), 'rb')

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _test_images(images_dir: str) -> Dict[str, Tuple[str, Tuple[int, int]]]:
    """``{city_seq_frame: (image path, (width, height))}`` of a
    ``leftImg8bit/test`` folder (image headers only)."""
    from PIL import Image
    if not osp.isdir(images_dir):
        raise CitymaskError(
            f'--images {images_dir} is not a folder (expected '
            'leftImg8bit/test, with one folder per city)')
    found = sorted(glob(osp.join(images_dir, '**', '*' + IMG_SUFFIX),
                        recursive=True))
    if not found:
        raise CitymaskError(
            f'no *{IMG_SUFFIX} under {images_dir} (expected '
            'leftImg8bit/test)')
    images = {}
    for path in found:
        try:
            with Image.open(path) as img:
                size = img.size
        except Exception as e:
            raise CitymaskError(f'cannot read image {path} ({e})') from None
        images[frame_key(path)] = (path, size)
    return images


def _train_id_hint(bad: List[int]) -> str:
    """Why label ids may be wrong: train ids, or 0-based class indices."""
    from cityscapesscripts.helpers.labels import id2label
    train_ids = {id2label[i].trainId: i for i in LABEL_IDS}
    if set(bad) <= set(train_ids):
        pairs = ', '.join(f'{t}->{train_ids[t]}' for t in sorted(set(bad)))
        return (f'; these look like train ids, the server wants label ids '
                f'({pairs}; cityscapesscripts.helpers.labels)')
    if set(bad) <= set(range(len(LABEL_IDS))):
        pairs = ', '.join(f'{i}->{LABEL_IDS[i]}' for i in sorted(set(bad)))
        return ('; these look like 0-based class indices (mmdet\'s label '
                f'order), the server wants label ids ({pairs})')
    return ''


class SubmissionReport:
    """What :func:`check_submission` found.

    Attributes:
        path: The folder or zip checked.
        problems: One line per problem; empty if the submission is valid.
        pred_files: Prediction files found.
        instances: Prediction lines read.
        images: Test images checked against, or None without ``--images``.
    """

    def __init__(self, path: str, images: Optional[int]) -> None:
        self.path = path
        self.images = images
        self.problems: List[str] = []
        self.pred_files = 0
        self.instances = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """A line saying what was checked and whether it passed."""
        what = (f'{self.pred_files} prediction files, {self.instances} '
                'instances')
        against = (f', checked against {self.images} test images'
                   if self.images is not None else
                   ' (without --images: not checked that every test image '
                   'has a prediction file and that masks have its size)')
        if self.ok:
            return f'OK: {self.path}: {what}{against}'
        return (f'INVALID: {self.path}: {len(self.problems)} problems in '
                f'{what}{against}')


def check_submission(path: str,
                     images_dir: Optional[str] = None) -> SubmissionReport:
    """Check a results folder or zip in the official instance format.

    Args:
        path: The results folder (e.g. ``--outfile-prefix``) or its zip.
        images_dir: The test images (``leftImg8bit/test``); with them, every
            image must have its prediction file and masks its size.

    Returns:
        The report; ``report.problems`` lists every problem found.

    Raises:
        CitymaskError: ``path`` or ``images_dir`` can't be read.
    """
    from PIL import Image
    images = _test_images(images_dir) if images_dir is not None else None
    files = _Files(path)
    report = SubmissionReport(path, None if images is None else len(images))
    problems = report.problems
    try:
        names = set(files.names)
        preds: Dict[str, List[str]] = {}
        for name in files.names:
            m = _PRED_NAME.match(posixpath.basename(name))
            if m:
                preds.setdefault(m.group(1), []).append(name)
        report.pred_files = sum(len(v) for v in preds.values())
        if not preds:
            problems.append('no prediction files (CITY_SEQ_FRAME*.txt, e.g. '
                            'berlin_000000_000019_leftImg8bit_pred.txt)')
        used = set()
        # mask -> [(frame, where it is named)]
        masks: Dict[str, List[Tuple[str, str]]] = {}
        bad_labels: List[Tuple[int, str]] = []
        for frame in sorted(preds):
            found = preds[frame]
            used.update(found)
            if len(found) > 1:
                problems.append(
                    f'{frame}: {len(found)} prediction files '
                    f'({", ".join(found)}); the server takes one per image')
            if images is not None and frame not in images:
                problems.append(
                    f'{found[0]}: no test image {frame} under {images_dir} '
                    '(a prediction for another split?)')
            for txt in found:
                _check_pred_file(files, txt, frame, names, masks, bad_labels,
                                 report)
        if bad_labels:
            ids = sorted({label for label, _ in bad_labels})
            at = ', '.join(where for _, where in bad_labels[:3])
            more = (f' and {len(bad_labels) - 3} more'
                    if len(bad_labels) > 3 else '')
            problems.append(
                f'{len(bad_labels)} predictions ({at}{more}) have label ids '
                f'{ids}, none of the 8 evaluated classes '
                f'{dict(zip(CLASSES, LABEL_IDS))}{_train_id_hint(ids)}')
        if images is not None:
            for frame in sorted(set(images) - set(preds)):
                problems.append(
                    f'{frame}: no prediction file for test image '
                    f'{images[frame][0]} (an image without objects needs an '
                    f'empty {frame}*_pred.txt)')
        sizes: Dict[str, Dict[Tuple[int, int], str]] = {}
        for mask in sorted(masks):
            used.add(mask)
            frame, where = masks[mask][0]
            try:
                with files.open(mask) as f, Image.open(f) as img:
                    bands, size = img.getbands(), img.size
            except Exception as e:
                problems.append(f'{mask} (named in {where}) is not a '
                                f'readable image ({type(e).__name__})')
                continue
            if len(bands) != 1:
                problems.append(
                    f'{mask}: {len(bands)} channels ({"".join(bands)}); '
                    'masks must be single-channel (8-bit grey PNG, non-zero '
                    '= the instance)')
            for other, _ in masks[mask]:
                if images is not None and other in images:
                    want = images[other][1]
                    if size != want:
                        problems.append(
                            f'{mask}: {size[0]}x{size[1]} pixels, its image '
                            f'{other} is {want[0]}x{want[1]}')
                else:
                    sizes.setdefault(other, {}).setdefault(size, mask)
        for frame, seen in sorted(sizes.items()):
            if len(seen) > 1:
                listed = ', '.join(f'{m} is {s[0]}x{s[1]}'
                                   for s, m in sorted(seen.items()))
                problems.append(f'{frame}: masks of different sizes '
                                f'({listed}); all must have the image size')
        for name in sorted(names - used):
            problems.append(f'{name}: stray file (neither a prediction file '
                            'nor a mask one names); remove it')
    finally:
        files.close()
    return report


def _check_pred_file(files: _Files, txt: str, frame: str, names: set,
                     masks: Dict[str, List[Tuple[str, str]]],
                     bad_labels: List[Tuple[int, str]],
                     report: SubmissionReport) -> None:
    """Check one prediction file's lines as ``readPredInfo`` reads them.
    """
    problems = report.problems
    with files.open(txt) as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        problems.append(f'{txt}: not a text file (not UTF-8)')
        return
    folder = posixpath.dirname(txt)
    seen: Dict[str, int] = {}
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        where = f'{txt}:{n}'
        # the official reader splits the raw line on single spaces
        fields = line.split(' ')
        if len(fields) != 3:
            problems.append(
                f'{where}: expected "relative/mask.png labelID confidence" '
                f'(3 fields, single spaces), got {line.rstrip()!r}')
            continue
        report.instances += 1
        rel, label, conf = fields[0], fields[1], fields[2].strip()
        if rel.startswith('/') or osp.isabs(rel):
            problems.append(f'{where}: mask path {rel} must be relative to '
                            'the prediction file')
            continue
        mask = posixpath.normpath(posixpath.join(folder, rel))
        if mask.startswith('../') or mask == '..':
            problems.append(f'{where}: mask path {rel} points outside the '
                            'results')
            continue
        if mask not in names:
            problems.append(f'{where}: mask {rel} does not exist')
        elif mask in seen:
            problems.append(f'{where}: mask {rel} is already named on line '
                            f'{seen[mask]} (the server keeps only the last)')
        else:
            masks.setdefault(mask, []).append((frame, where))
        seen[mask] = n
        try:
            value = float(label)
        except ValueError:
            problems.append(f'{where}: label id {label!r} is not a number')
        else:
            if not math.isfinite(value) or value != int(value):
                problems.append(
                    f'{where}: label id {label!r} is not an integer')
            elif int(value) not in LABEL_IDS:
                bad_labels.append((int(value), where))
        try:
            score = float(conf)
        except ValueError:
            problems.append(f'{where}: confidence {conf!r} is not a number')
        else:
            if not math.isfinite(score):
                problems.append(f'{where}: confidence {conf} is not a finite '
                                'number')
