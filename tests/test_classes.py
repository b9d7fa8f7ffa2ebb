"""citymask.classes against cityscapesscripts' label table and mmdet's
dataset class lists (independent references)."""
import os.path as osp

import numpy as np
from cityscapesscripts.evaluation.instance import Instance
from cityscapesscripts.helpers.labels import labels, name2label
from mmdet.datasets import CityscapesDataset, CocoDataset

from citymask import classes


def test_classes_label_ids_and_void_ids_are_cityscapes_own():
    assert classes.CLASSES == tuple(CityscapesDataset.METAINFO['classes'])
    evaluated = [lb for lb in labels if lb.hasInstances and
                 not lb.ignoreInEval]
    # the official evaluator's class order and ids
    assert list(classes.CLASSES) == [lb.name for lb in evaluated]
    assert list(classes.LABEL_IDS) == [lb.id for lb in evaluated]
    for name, label_id in classes.NAME_TO_LABEL_ID.items():
        assert name2label[name].id == label_id
    # void: the evaluator's ignored labels
    assert set(classes.VOID_IDS) == {
        lb.id for lb in labels if lb.ignoreInEval and lb.id >= 0}


def test_coco_side_matches_mmdet_by_name():
    assert classes.COCO_CLASSES == tuple(CocoDataset.METAINFO['classes'])
    coco = CocoDataset.METAINFO['classes']
    for (name, _, coco_name), index in zip(classes.CITYSCAPES_COCO_TABLE,
                                           classes.COCO_INDEX):
        if name in coco:  # same class, same name in both datasets
            assert coco_name == name and index == coco.index(name)
        else:
            assert coco_name is None and index is None
    assert [n for n, _, c in classes.CITYSCAPES_COCO_TABLE if c is None] \
        == ['rider']


def test_instance_id_rule_is_cityscapesscripts():
    ids = np.array([0, 7, 24, 25, 999, 1000, 24000, 24001, 26017, 33999])
    want = [Instance(ids, int(i)).labelID for i in ids]
    assert classes.label_of_instance_id(ids).tolist() == want
    assert [classes.label_of_instance_id(int(i)) for i in ids] == want


def test_file_suffixes_are_the_ones_cityscapesscripts_uses():
    import fnmatch
    import inspect

    from cityscapesscripts.evaluation import \
        evalInstanceLevelSemanticLabeling as official
    from cityscapesscripts.preparation import createPanopticImgs
    frame = 'aachen_000000_000019'
    assert fnmatch.fnmatch(frame + classes.INSTANCE_IDS_SUFFIX,
                           osp.basename(official.args.groundTruthSearch))
    # the pattern cityscapesscripts' label-image scripts search for
    assert fnmatch.fnmatch(frame + classes.POLYGONS_SUFFIX,
                           '*_gt*_polygons.json')
    assert classes.POLYGONS_SUFFIX.startswith('_gtFine')
    # createPanopticImgs maps an instanceIds name to its image's name
    assert ('"_instanceIds.png", "_leftImg8bit.png"'
            in inspect.getsource(createPanopticImgs))
    assert (frame + classes.IMG_SUFFIX).endswith('_leftImg8bit.png')
