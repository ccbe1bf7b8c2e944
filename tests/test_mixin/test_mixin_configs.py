# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's parts in mmdet's own video models (issue #17): the toy configs
train a few iterations and evaluate on a tiny ToyVIS, and the configs build
from mmdet's own bases (``mmdet::``) plus the plugin's components only.

The model-level checks of the foreign teacher (interface, projection,
export into plain IDOL, knowledge bank) are in
tests/test_models/test_mask2former_teacher.py; the real-data configs run
on real-shape data in tests/test_configs/test_real_data_configs.py.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmookd.utils import set_data_root

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(ROOT, 'configs/toy/mixin')
REAL = osp.join(ROOT, 'configs/mixin')


@pytest.fixture(autouse=True)
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(autouse=True)
def plain_config_text(monkeypatch):
    """The Runner logs and dumps its config through yapf (3 s a call on
    a 2-core CPU, 15 s per run): a plain repr is enough here."""
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: repr(self._cfg_dict)))


def run_toy(name,
            data_root,
            work_dir,
            iters=2,
            teacher_ckpt=None,
            batch_size=None,
            short_only=False):
    cfg = Config.fromfile(osp.join(TOY, name))
    set_data_root(cfg, data_root)
    cfg.work_dir = str(work_dir)
    if batch_size:
        cfg.train_dataloader.batch_size = batch_size
    cfg.randomness = dict(seed=0)
    if cfg.model.get('teacher'):
        cfg.model.teacher.checkpoint = teacher_ckpt
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    # evaluate on one short and one long validation video
    splits = cfg.val_dataloader.dataset.datasets
    for split in splits:
        split.indices = 1
    if short_only:
        del splits[1:]
    cfg.test_dataloader = cfg.val_dataloader
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('name', [
    'masktrack-rcnn_r18-tiny_1xb2-toyvis_minor-paste.py',
    'mask2former-vis_r18-tiny_1xb2-toyvis_minor-paste.py'
])
def test_mmdet_model_trains_with_minor_paste_and_evaluates(
        name, tiny_toyvis, tmp_path):
    runner = run_toy(name, tiny_toyvis, tmp_path)
    dataset = runner.train_dataloader.dataset
    assert type(dataset).__name__ == 'MultiImageMixDataset'
    assert type(dataset.pipeline[0]).__name__ == 'MinorPaste'
    scalars = runner.message_hub.log_scalars
    assert 'train/loss' in scalars
    assert any(k.startswith('val/youtube_vis/') for k in scalars)
    assert osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))


def test_ookd_with_the_mask2former_teacher_trains_and_evaluates(
        tiny_toyvis, tmp_path):
    """The teacher: the toy Mask2Former-VIS trained with its own (mmdet)
    config for 1 iteration; the student distils from it through the
    projection, then evaluates as IDOL."""
    teacher = run_toy(
        'mask2former-vis_r18-tiny_1xb2-toyvis.py',
        tiny_toyvis,
        tmp_path / 'teacher',
        iters=1)
    del teacher
    ckpt = str(tmp_path / 'teacher' / 'iter_1.pth')
    runner = run_toy(
        'ookd_r18-tiny_1xb2-toyvis_mask2former-teacher.py',
        tiny_toyvis,
        tmp_path / 'student',
        iters=1,
        teacher_ckpt=ckpt,
        batch_size=1,
        short_only=True)
    scalars = runner.message_hub.log_scalars
    assert 'train/loss_kd' in scalars
    assert any(k.startswith('val/youtube_vis/') for k in scalars)
    assert type(runner.model.teacher).__name__ == 'Mask2FormerVISTeacher'


def _bases(path):
    with open(path) as f:
        text = f.read()
    return text


@pytest.mark.parametrize('name', [
    'masktrack-rcnn_r50_8xb1-12e_youtubevis2021_minor-paste.py',
    'mask2former-vis_r50_8xb2-8e_youtubevis2021_minor-paste.py',
])
def test_real_configs_inherit_mmdets_own(name):
    """mmdet's config is the base (``mmdet::``), not a copy: its model is
    there unchanged apart from what the config names."""
    text = _bases(osp.join(REAL, name))
    base = text[text.index('_base_ = ['):]
    base = base[:base.index(']')]
    assert "'mmdet::" in base and 'model = ' not in text
    cfg = Config.fromfile(osp.join(REAL, name))
    assert 'mmookd' in cfg.custom_imports['imports']


@pytest.mark.parametrize('path, model_types', [
    ('configs/toy/masktrack-rcnn_r18-tiny_1xb2-toyvis.py',
     ('MaskTrackRCNN', 'MaskRCNN', 'RoITrackHead')),
    ('configs/toy/mixin/mask2former-vis_r18-tiny_1xb2-toyvis.py',
     ('Mask2FormerVideo', 'Mask2FormerTrackHead')),
])
def test_toy_configs_inherit_mmdets_own(path, model_types):
    """The toy mmdet models are mmdet's configs made small, not copies:
    the base is ``mmdet::`` and no model type is restated."""
    text = _bases(osp.join(ROOT, path))
    base = text[text.index('_base_ = ['):]
    base = base[:base.index(']')]
    assert "'mmdet::" in base
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert cfg.model.type == model_types[0]
    for name in model_types:
        assert f"type='{name}'" not in text
    assert 'mmookd' in cfg.custom_imports['imports']


def _plain(node):
    """A config node without unset backends and registry scopes."""
    if isinstance(node, dict):
        return {
            k: _plain(v)
            for k, v in node.items()
            if k != '_scope_' and not (k == 'backend_args' and v is None)
        }
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


def test_toy_masktrack_reads_toyvis_as_the_toy_base_does():
    """mmdet's base brings its own YouTube-VIS data; the toy config puts
    back exactly the data of configs/_base_/datasets/toyvis.py."""
    toy = Config.fromfile(
        osp.join(ROOT, 'configs/toy/masktrack-rcnn_r18-tiny_1xb2-toyvis.py'))
    base = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/toyvis.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        got = _plain(toy[key].to_dict())
        got.pop('persistent_workers', None)  # False (mmdet's base: True)
        got.pop('drop_last', None)  # False, the default
        assert got == _plain(base[key].to_dict()), key
    assert toy.train_cfg == dict(
        type='IterBasedTrainLoop', max_iters=600, val_interval=601)
    assert toy.optim_wrapper.optimizer == dict(
        type='AdamW', lr=3e-3, weight_decay=1e-4)


def test_real_foreign_teacher_builds_behind_the_adapter():
    """The R-50 OOKD config's teacher: mmdet's Mask2Former-VIS config with
    the adapter type, no download (its initialisation is off: the trained
    checkpoint holds every weight)."""
    from mmengine.registry import init_default_scope

    from mmookd.models.vis.ookd import build_frozen_teacher
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(REAL,
                 'ookd_r50_8xb4-12k_youtubevis2021_mask2former-teacher.py'))
    assert cfg.model.loss_kd.type == 'ProjectedCosineKDLoss'
    teacher = cfg.model.teacher
    model = build_frozen_teacher(teacher.config, None, teacher.cfg_options)
    assert type(model).__name__ == 'Mask2FormerVISTeacher'
    assert model.track_head.num_classes == 40
    assert cfg.model.loss_kd.out_channels == \
        model.track_head.decoder_embed_dims
    assert not model.training


def test_drop_checkpoints_clears_url_initialisations():
    """mmdet's bases initialise from URLs; the tests download nothing."""
    from mmookd.utils.config_utils import drop_checkpoints
    url = dict(type='Pretrained', checkpoint='https://x/y.pth')
    tv = dict(type='Pretrained', checkpoint='torchvision://resnet50')
    local = dict(type='Pretrained', checkpoint='checkpoints/local.pth')
    cfg = Config(
        dict(
            load_from=None,
            model=dict(
                type='MaskTrackRCNN',
                detector=dict(init_cfg=url, backbone=dict(init_cfg=tv)),
                neck=dict(init_cfg=local),
                heads=[dict(init_cfg=url)])))
    drop_checkpoints(cfg)
    assert cfg.model.detector.init_cfg is None
    assert cfg.model.detector.backbone.init_cfg is None
    assert cfg.model.heads[0].init_cfg is None
    assert cfg.model.neck.init_cfg.checkpoint == 'checkpoints/local.pth'


def test_clip_paste_in_mmdets_pipeline(tiny_toyvis):
    """Clip-Paste (``mode='clip'``) on mmdet's MaskTrack R-CNN samples:
    pasted tubes get new ids, the same in both frames, boxes in the
    image."""
    import numpy as np
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(TOY, 'masktrack-rcnn_r18-tiny_1xb2-toyvis_minor-paste.py'))
    set_data_root(cfg, tiny_toyvis)
    paste = cfg.train_dataloader.dataset.pipeline[0]
    paste.update(mode='clip', clip_paste_prob=1.0)
    # where each pasted tube came from (for the check)
    cfg.train_dataloader.dataset.pipeline[1].meta_keys = ('instance_sources', )
    np.random.seed(0)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    pasted = 0
    for i in range(len(dataset)):  # one sample per video
        sample = dataset[i]['data_samples']
        ids = [set(f.gt_instances.instances_ids.tolist()) for f in sample]
        sources = [f.metainfo['instance_sources'] for f in sample]
        assert sources[0] == sources[1]
        new = set(sources[0])
        pasted += len(new)
        # a pasted tube may be absent in a frame (as in its source clip)
        assert new <= set.union(*ids)
        for frame in sample:
            boxes = frame.gt_instances.bboxes
            boxes = getattr(boxes, 'tensor', boxes)
            h, w = frame.img_shape[:2]
            assert (boxes[:, 2] <= w + 1e-3).all()
            assert (boxes[:, 3] <= h + 1e-3).all()
    assert pasted > 0
