# Copyright (c) mmookd contributors. All rights reserved.
"""mmookd.utils.config_utils: dropping every checkpoint and fixing the
resize scales, on hand-made configs."""
import pytest
from mmengine.config import Config

from mmookd.utils.config_utils import drop_checkpoints, fix_resize_scales


def ookd_like_config() -> Config:
    """An OOKD-shaped config: a student, a teacher with its own
    checkpoints, a RAFT weight file elsewhere, two resizes per loader."""
    train_pipeline = [
        dict(type='LoadVISFrame'),
        dict(
            type='RandomChoiceResize',
            scales=[(1333, 480), (1333, 360), (1333, 640)],
            keep_ratio=True),
        dict(
            type='RandomChoice',
            transforms=[[
                dict(
                    type='RandomChoiceResize',
                    scales=[(1333, 800), (1333, 400)]),
            ]]),
        dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    ]
    test_pipeline = [dict(type='Resize', scale=(1333, 720), keep_ratio=True)]
    return Config(
        dict(
            load_from='work_dirs/student.pth',
            model=dict(
                type='OOKD',
                online_checkpoint='checkpoints/idol.pth',
                teacher=dict(
                    config='configs/teacher.py',
                    checkpoint='checkpoints/teacher.pth',
                    cfg_options=dict(foo=1)),
                loss_flow=dict(checkpoint='checkpoints/raft.pth')),
            train_dataloader=dict(dataset=dict(pipeline=train_pipeline)),
            test_dataloader=dict(dataset=dict(pipeline=test_pipeline))))


def test_drop_checkpoints():
    cfg = drop_checkpoints(ookd_like_config())
    assert cfg.load_from is None
    assert cfg.model.online_checkpoint is None
    assert cfg.model.teacher.checkpoint is None
    assert cfg.model.teacher.cfg_options.to_dict() == dict(
        foo=1, online_checkpoint=None)
    # weight files that are not the model's checkpoints are left alone
    assert cfg.model.loss_flow.checkpoint == 'checkpoints/raft.pth'
    assert cfg.model.teacher.config == 'configs/teacher.py'


def test_drop_checkpoints_without_teacher():
    cfg = Config(dict(load_from='x.pth', model=dict(type='IDOL')))
    drop_checkpoints(cfg)
    assert cfg.load_from is None
    assert 'teacher' not in cfg.model
    assert 'online_checkpoint' not in cfg.model
    cfg = Config(dict(model=dict(type='OOKD', teacher=None)))
    drop_checkpoints(cfg)
    assert cfg.model.teacher is None


def resizes(cfg, loader):
    pipeline = cfg[loader].dataset.pipeline
    return (pipeline[1].scales, pipeline[2].transforms[0][0].scales,
            pipeline[3].scale)


@pytest.mark.parametrize('which, first, nested', [
    ('min', (1333, 360), (1333, 400)),
    ('max', (1333, 640), (1333, 800)),
])
def test_fix_resize_scales_min_max(which, first, nested):
    """Every RandomChoiceResize (nested ones too) keeps one scale, chosen by
    short side; a plain Resize and the other loaders are untouched."""
    cfg = fix_resize_scales(ookd_like_config(), 'train_dataloader', which)
    assert resizes(cfg, 'train_dataloader') == ([first], [nested], (1333, 800))
    assert cfg.test_dataloader.dataset.pipeline[0].scale == (1333, 720)


def test_fix_resize_scales_short_side():
    cfg = fix_resize_scales(
        ookd_like_config(), 'train_dataloader', short_side=256)
    assert resizes(cfg, 'train_dataloader') == ([(512, 256)], [(512, 256)],
                                                (512, 256))
    fix_resize_scales(cfg, 'test_dataloader', short_side=128)
    assert cfg.test_dataloader.dataset.pipeline[0].scale == (256, 128)


def test_fix_resize_scales_rejects_unknown_choice():
    with pytest.raises(ValueError, match='min'):
        fix_resize_scales(ookd_like_config(), which='median')
