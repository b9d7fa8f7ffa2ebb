"""Check a Cityscapes instance-level submission before uploading it.

The server answers a faulty zip with "content does not match
specifications". This lists every problem against its script
(``getPrediction``, ``readPredInfo``) and the format spec: one
``CITY_SEQ_FRAME*.txt`` per test image (empty without objects); lines of
three fields split by single spaces, a relative mask path inside the
results; masks that exist, single-channel, of the image's size; label ids
of the 8 classes; finite confidences; no stray files. Only image headers
are read, as untrusted input (:mod:`.untrusted`).
"""
import io
import os
import os.path as osp
import posixpath
import re
import zipfile
import zlib
from contextlib import closing
from dataclasses import dataclass, field
from glob import glob
from typing import Dict, List, Optional, Tuple

from ..classes import CLASSES, IMG_SUFFIX, LABEL_IDS
from ..errors import CitymaskError
from ..fileio import atomic_path
from .results_format import frame_key, label_id_hint, parse_line, pred_lines
from .untrusted import (HEADER_BYTES, MAX_LINE_BYTES, MAX_MASK_BYTES,
                        MAX_PRED_BYTES, excerpt, inside, read_regular, too_big)

# the official script's ``"{city}_{seq}_{frame}*.txt"`` anywhere in results
_PRED_NAME = re.compile(r'^([^_/]+_\d+_\d+).*\.txt$')


class _Files:
    """The files of a results folder or zip, by relative POSIX path."""

    def __init__(self, path: str) -> None:
        self.path, self._zip = path, None
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
        else:
            raise CitymaskError(
                f'{path} is neither a results folder nor a zip file'
                if osp.exists(path) else f'{path} does not exist')

    def read(self, name: str, limit: int, head: int = 0) -> bytes:
        """A file of at most ``limit`` bytes (its first ``head`` if given);
        CitymaskError if too big, irregular, outside or damaged."""
        if self._zip is None:
            return read_regular(inside(self.path, osp.join(self.path, name)),
                                limit, head)
        info = self._zip.getinfo(name)
        if info.file_size > limit:  # declared, then actual (below)
            raise CitymaskError(f'{name}: {too_big(info.file_size, limit)}')
        try:
            with self._zip.open(info) as f:
                data = f.read(head or limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError,
                NotImplementedError) as e:
            raise CitymaskError(f'{name}: damaged zip member ({e})') from None
        if len(data) > limit:
            raise CitymaskError(f'{name}: {too_big(len(data), limit)}')
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _test_images(images_dir: str) -> Dict[str, Tuple[str, Tuple[int, int]]]:
    """``{city_seq_frame: (image path, (width, height))}`` of
    ``leftImg8bit/test`` (headers only)."""
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


@dataclass
class SubmissionReport:
    """What :func:`check_submission` found: ``problems`` (a line each),
    counts of ``pred_files``, ``instances`` and test ``images`` (None
    without ``--images``)."""

    path: str
    images: Optional[int]
    problems: List[str] = field(default_factory=list)
    pred_files: int = 0
    instances: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """A line saying what was checked and whether it passed."""
        what = (f'{self.pred_files} prediction files, {self.instances} '
                'instances' + (
                    f', checked against {self.images} test images'
                    if self.images is not None else
                    ' (without --images: not checked that every test image '
                    'has a prediction file and that masks have its size)'))
        return (f'OK: {self.path}: {what}' if self.ok else f'INVALID: '
                f'{self.path}: {len(self.problems)} problems in {what}')


def check_submission(path: str, images_dir: Optional[str] = None,
                     max_pred_bytes: int = MAX_PRED_BYTES) -> SubmissionReport:
    """Check a results folder or its zip in the official instance format;
    with ``images_dir`` (``leftImg8bit/test``) every image must have its
    prediction file and masks its size. CitymaskError if ``path`` or
    ``images_dir`` can't be read."""
    from PIL import Image
    images = _test_images(images_dir) if images_dir is not None else None
    report = SubmissionReport(path, None if images is None else len(images))
    problems = report.problems
    with closing(_Files(path)) as files:
        names = set(files.names)
        preds: Dict[str, List[str]] = {}
        for name in files.names:
            m = _PRED_NAME.match(posixpath.basename(name))
            if m:
                preds.setdefault(m.group(1), []).append(name)
                report.pred_files += 1
        if not preds:
            problems.append('no prediction files (CITY_SEQ_FRAME*.txt, e.g. '
                            'berlin_000000_000019_leftImg8bit_pred.txt)')
        used = set()
        masks: Dict[str, List[Tuple[str, str]]] = {}  # [(frame, where)]
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
                                 report, max_pred_bytes)
        if bad_labels:
            ids = sorted({label for label, _ in bad_labels})
            at = ', '.join(where for _, where in bad_labels[:3])
            more = f' and {len(bad_labels) - 3} more' * (len(bad_labels) > 3)
            problems.append(
                f'{len(bad_labels)} predictions ({at}{more}) have label ids '
                f'{ids}, none of the 8 evaluated classes '
                f'{dict(zip(CLASSES, LABEL_IDS))}{label_id_hint(ids)}')
        for frame in sorted(set(images or ()) - set(preds)):
            problems.append(
                f'{frame}: no prediction file for test image '
                f'{images[frame][0]} (an image without objects needs an '
                f'empty {frame}*_pred.txt)')
        sizes: Dict[str, Dict[Tuple[int, int], str]] = {}
        for mask in sorted(masks):
            used.add(mask)
            frame, where = masks[mask][0]
            try:  # the header only
                head = files.read(mask, MAX_MASK_BYTES, HEADER_BYTES)
                with Image.open(io.BytesIO(head)) as img:
                    bands, size = img.getbands(), img.size
            except CitymaskError as e:
                problems.append(f'{e} (named in {where})')
                continue
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
        problems += [f'{name}: stray file (neither a prediction file nor a '
                     'mask one names); remove it'
                     for name in sorted(names - used)]
    return report


def _check_pred_file(files: _Files, txt: str, frame: str, names: set,
                     masks: Dict[str, List[Tuple[str, str]]],
                     bad_labels: List[Tuple[int, str]],
                     report: SubmissionReport, max_bytes: int) -> None:
    """Check one prediction file's lines as ``readPredInfo`` reads them."""
    problems = report.problems
    try:
        lines = pred_lines(files.read(txt, max_bytes), txt)
    except CitymaskError as e:
        problems.append(str(e))
        return
    folder = posixpath.dirname(txt)
    seen: Dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        where = f'{txt}:{n}'
        try:
            rel, label_id, _ = parse_line(line)
        except CitymaskError as e:
            problems.append(f'{where}: {e}')
            rel, label_id = line.split(' ')[0], None  # a bad value: its
            if len(line) > MAX_LINE_BYTES or line.count(' ') != 2 or \
                    osp.isabs(rel):  # mask is still named, not stray
                continue
        report.instances += 1
        mask = posixpath.normpath(posixpath.join(folder, rel))
        if mask.startswith('../') or mask == '..':
            problems.append(f'{where}: mask path {excerpt(rel)} points '
                            'outside the results')
        elif mask not in names:
            problems.append(f'{where}: mask {excerpt(rel)} does not exist')
        elif mask in seen:
            problems.append(f'{where}: mask {excerpt(rel)} is already named '
                            f'on line {seen[mask]} (the server keeps only '
                            'the last)')
        else:
            masks.setdefault(mask, []).append((frame, where))
        seen[mask] = n
        if label_id is not None and label_id not in LABEL_IDS:
            bad_labels.append((label_id, where))


def zip_results(folder: str, images_dir: Optional[str] = None) -> str:
    """``folder.zip`` of the folder's files, for the benchmark server;
    written only if the folder passes :func:`check_submission` (against
    ``images_dir`` if given)."""
    report = check_submission(folder, images_dir)
    if not report.ok:
        cmd = f'python tools/check_submission.py {folder}' + (
            f' --images {images_dir}' if images_dir else '')
        raise CitymaskError(
            f'{folder} is not a valid submission, not zipped: '
            f'{len(report.problems)} problems, first: {report.problems[0]} '
            f'(all of them: `{cmd}`)')
    path = folder.rstrip('/') + '.zip'
    with atomic_path(path) as tmp, zipfile.ZipFile(
            tmp, 'w', zipfile.ZIP_DEFLATED) as zf:  # closed before renamed
        for name in sorted(os.listdir(folder)):
            zf.write(osp.join(folder, name), name)
    return path
