"""The 1xb8 / 2xb4 / 4xb2 configs are the 8x1 recipe: same config but for
the batch layout, and one process with 2 images computes what 2 gloo ranks
with 1 image each compute."""
import itertools
import json
import os.path as osp

import cv2
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config

from ..conftest import CONFIGS

MINI = osp.join(CONFIGS, 'mini', 'maskrcnn_r18_fpn_mini_cityscapes.py')
RECIPES = [('maskrcnn_r50_fpn_cityscapes_ft.py', '4k_cityscapes-ft'),
           ('maskrcnn_r50_fpn_cityscapes.py', '24k_cityscapes')]


def _layout_free(cfg):
    """The config without its batch layout (batch size, batch sampler,
    resize type) and with its resize step."""
    cfg = cfg.to_dict()
    loader = cfg['train_dataloader']
    del loader['batch_size'], cfg['train_pipeline']
    loader.pop('batch_sampler', None)
    pipeline = loader['dataset'].pop('pipeline')
    for t in pipeline:
        if t['type'] in ('RandomChoiceResize', 'BatchChoiceResize'):
            t['type'] = 'resize'
    return cfg, pipeline


@pytest.mark.parametrize('gpus', [1, 2, 4])
@pytest.mark.parametrize('ref,suffix', RECIPES)
def test_same_recipe_as_eight_gpus(ref, suffix, gpus):
    old = Config.fromfile(osp.join(CONFIGS, ref))
    new = Config.fromfile(
        osp.join(CONFIGS, f'maskrcnn_r50_fpn_{gpus}xb{8 // gpus}-{suffix}.py'))
    images = new.train_cfg.max_iters * new.train_dataloader.batch_size * gpus
    assert images == old.train_cfg.max_iters * 1 * 8
    # schedule, lr, iterations, model, data, scales: all the same
    assert _layout_free(new) == _layout_free(old)
    assert new.train_dataloader.batch_sampler.type == 'SeededBatchSampler'
    assert new.train_dataloader.dataset.pipeline == new.train_pipeline
    assert [t.type for t in new.train_pipeline][2] == 'BatchChoiceResize'
    # --auto-scale-lr: factor 1 on the config's GPU count
    assert new.auto_scale_lr.base_batch_size == 8 == old.auto_scale_lr[
        'base_batch_size']


@pytest.fixture(scope='module')
def two_frames(tmp_path_factory):
    """Two 128x64 frames with the same annotations (so every count the
    losses divide by is the same for both) and different pixels."""
    from citymask.datasets.cityscapes_converter import convert_cityscapes
    from citymask.testing.mini_cityscapes import make_mini_cityscapes
    root = str(tmp_path_factory.mktemp('two'))
    make_mini_cityscapes(osp.join(root, 'cs'), dict(train=1), 128, 64,
                         empty_every=0)
    ann = convert_cityscapes(osp.join(root, 'cs'), root, ['train'],
                             progress=False)['train']
    with open(ann) as f:
        coco = json.load(f)
    img = dict(coco['images'][0], id=1)
    img['file_name'] = img['file_name'].replace('000000', '000001')
    prefix = osp.join(root, 'cs', 'leftImg8bit', 'train')
    first = cv2.imread(osp.join(prefix, coco['images'][0]['file_name']))
    cv2.imwrite(osp.join(prefix, img['file_name']), 255 - first)
    n = len(coco['annotations'])
    coco['images'].append(img)
    coco['annotations'] += [dict(a, id=a['id'] + n, image_id=1)
                            for a in coco['annotations']]
    with open(ann, 'w') as f:
        json.dump(coco, f)
    cfg = Config.fromfile(MINI)
    # every anchor and RoI candidate taken (no random choice), no NMS (mmcv's
    # CPU kernel is float32 only); the RPN's box deltas 0 (weights zeroed
    # below, bias 0): the proposals are the anchors in both images
    tc = cfg.model.train_cfg
    tc.rpn.sampler.num = tc.rcnn.sampler.num = 10**6
    tc.rpn_proposal.update(nms_pre=10**5, max_per_img=10**5, nms=None)
    cfg.train_dataloader.dataset.update(
        data_root=osp.join(root, 'cs'), ann_file=ann, pipeline=[
            *cfg.train_pipeline[:2],
            dict(type='Resize', scale=(128, 64), keep_ratio=True),
            cfg.train_pipeline[-1]])
    torch.manual_seed(0)  # the same weights whatever ran before
    model = _model(cfg)
    model.init_weights()
    torch.nn.init.zeros_(model.rpn_head.rpn_reg.weight)
    torch.save(model.state_dict(), osp.join(root, 'weights.pth'))
    return cfg, root


def _model(cfg):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import citymask.register  # noqa: F401
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def _step(cfg, root, images, ddp=False):
    """Losses and gradients of one training step on ``images``, in float64
    (see the test for why)."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from mmengine.model import MMDistributedDataParallel
    model = _model(cfg)
    model.load_state_dict(
        torch.load(osp.join(root, 'weights.pth'), weights_only=True))
    model.double().train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in images]), True)
    data['inputs'] = data['inputs'].double()
    net = MMDistributedDataParallel(module=model) if ddp else model
    loss, log_vars = model.parse_losses(net(**data, mode='loss'))
    loss.backward()
    return ({k: v.item() for k, v in log_vars.items()},
            {n: p.grad for n, p in model.named_parameters()
             if p.grad is not None})


def _rank(rank, cfg, root):
    from mmengine.dataset import InfiniteSampler

    from citymask.datasets.samplers import SeededBatchSampler
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2,
                            init_method='file://' + osp.join(root, 'store'))
    losses, grads = _step(cfg, root, [rank], ddp=True)
    sampler = SeededBatchSampler(InfiniteSampler(range(16), seed=0), 2)
    batches = [[(int(i), i.batch_seed) for i in b]
               for b in itertools.islice(sampler, 4)]
    torch.save(dict(losses=losses, grads=grads, batches=batches),
               osp.join(root, f'rank{rank}.pth'))
    dist.destroy_process_group()


def test_one_process_two_images_is_two_ranks_one_image(two_frames):
    cfg, root = two_frames
    ranks = mp.spawn(_rank, args=(cfg, root), nprocs=2, join=False)
    losses, grads = _step(cfg, root, [0, 1])  # meanwhile, here
    while not ranks.join():  # returns once a rank has exited
        pass
    ranks = [torch.load(osp.join(root, f'rank{r}.pth'), weights_only=True)
             for r in (0, 1)]
    # mmdet averages each loss over the batch (RPN over sampled anchors,
    # R-CNN over sampled RoIs, masks over positive RoIs); the recipe's
    # per-image sampler counts make that the mean of the images' means,
    # except for masks. Here every count is the same for both images, so
    # the batch must equal the ranks' mean up to rounding of sums in another
    # order: in float32 up to 2e-4 of a gradient's norm over 24 seeds, with
    # a tail beyond; in float64 at most 4e-11 over 16, held to 1e-8. Two
    # losses stay float32 (torch's BCE-with-logits computes in its float32
    # target's dtype): 1e-5, against 4e-8 measured. A loss summed, not
    # averaged, is off 2x; two annotations fewer on one image, 5e-4.
    assert ranks[0]['losses']['loss'] != ranks[1]['losses']['loss']
    for key, value in losses.items():
        mean = (ranks[0]['losses'][key] + ranks[1]['losses'][key]) / 2
        assert value == pytest.approx(mean, rel=1e-5, abs=1e-7), key
    assert grads.keys() == ranks[0]['grads'].keys()
    for name, grad in grads.items():
        # DDP leaves both ranks the same all-reduced mean
        assert torch.equal(ranks[0]['grads'][name], ranks[1]['grads'][name])
        assert grad.dtype == torch.float64, name
        error = (ranks[0]['grads'][name] - grad).norm()
        assert error <= 1e-8 * grad.norm(), name
    # each rank's batches: its own indices, its own seeds (scales)
    b0, b1 = (r['batches'] for r in ranks)
    assert not {i for b in b0 for i, _ in b} & {i for b in b1 for i, _ in b}
    assert all(len({s for _, s in b}) == 1 for b in b0 + b1)
    assert [b[0][1] for b in b0] != [b[0][1] for b in b1]
