"""Bad predictions and polygons refused with one clear line, in-process
(docs/reliability.md lists each with its test). Their modules' own test
files are the place for them: results_format and the metric (tests/
evaluation/), the converter (tests/datasets/)."""
import json
import logging

import numpy as np
import pytest
import torch

from citymask.errors import CitymaskError, ConversionError

# predictions


def test_the_metric_refuses_non_finite_scores():
    import citymask.register  # noqa: F401
    from citymask.classes import CLASSES
    from citymask.evaluation.metrics import CityscapesInstanceMetric
    metric = CityscapesInstanceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    pred = dict(scores=torch.tensor([0.9, float('nan')]),
                labels=torch.tensor([0, 2]),
                masks=torch.zeros(2, 8, 8, dtype=torch.bool))
    with pytest.raises(CitymaskError, match='non-finite scores .* a_b_c'):
        metric.process({}, [dict(pred_instances=pred, img_path='a_b_c.png',
                                 ori_shape=(8, 8))])


# polygons of fewer than 3 points


def test_two_point_polygons_are_kept_as_cityscapesscripts_draws_them(
        tmp_path, caplog):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import \
        createInstanceImage

    from citymask.datasets.cityscapes_converter import (_coco_dict,
                                                        polygon_annotations)
    path = tmp_path / 'a_000000_000000_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=[[10, 10], [40, 30]]),
        dict(label='person', polygon=[[5, 40], [20, 40], [20, 45]])])))
    size, anns = polygon_annotations(str(path))
    # the reference: the instance PNG cityscapesscripts draws from the file
    ann = Annotation()
    ann.fromJsonFile(str(path))
    inst = np.asarray(createInstanceImage(ann, 'ids'))
    car = [a for a in anns if a['category_id'] == 26]
    assert len(car) == 1
    assert car[0]['area'] == np.count_nonzero(inst == 26000) > 0
    with caplog.at_level(logging.WARNING):
        _coco_dict(str(tmp_path), 'train', [('x.png', str(path))],
                   [(dict(width=64, height=48), anns)])
    assert 'note: 1 train objects have a polygon of 2 points' in caplog.text
    assert all('_two_points' not in a for a in anns)  # not in the JSON


@pytest.mark.parametrize('points', [[[10, 10]], []])
def test_polygons_of_0_or_1_point_are_refused(tmp_path, points):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import \
        createInstanceImage

    from citymask.datasets.cityscapes_converter import polygon_annotations
    path = tmp_path / 'a_gtFine_polygons.json'
    path.write_text(json.dumps(dict(imgWidth=64, imgHeight=48, objects=[
        dict(label='car', polygon=points)])))
    ann = Annotation()
    ann.fromJsonFile(str(path))
    with pytest.raises(Exception):  # cityscapesscripts can't draw it either
        createInstanceImage(ann, 'ids')
    with pytest.raises(ConversionError,
                       match=f"{path}: a 'car' object has a polygon of "
                       f'{len(points)} point'):
        polygon_annotations(str(path))
