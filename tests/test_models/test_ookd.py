# Copyright (c) mmookd contributors. All rights reserved.
"""The OOKD distiller: frozen teacher, QFA-associated KD, student = IDOL.

The teacher here is a small registered stand-in with ``forward_clip`` (any
model with that method can be a teacher); the student is the toy IDOL.
"""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from test_idol import TOY_CFG, make_video, output_everything
from torch import nn

import mmookd.models  # noqa: F401

init_default_scope('mmdet')


@MODELS.register_module(force=True)
class _ClipStatsTeacher(nn.Module):
    """Predicts, per frame, fixed boxes that sit on the GT of
    ``make_video`` for queries 3 and 7, and embeddings from the clip's
    pixels through a linear layer (so they depend on the input)."""

    def __init__(self, num_queries=10, num_classes=8, embed_dims=64):
        super().__init__()
        self.num_queries, self.num_classes = num_queries, num_classes
        self.proj = nn.Linear(3, num_queries * embed_dims)
        self.embed_dims = embed_dims

    def forward_clip(self, imgs, frame_samples):
        num_frames = imgs.size(0)
        h, w = frame_samples[0].metainfo['img_shape']
        stats = imgs.mean((0, 2, 3))
        embeds = self.proj(stats).view(self.num_queries, self.embed_dims)
        cls = torch.full((num_frames, self.num_queries, self.num_classes), -5.)
        boxes = torch.tensor([0.5, 0.5, 0.1,
                              0.1]).repeat(num_frames, self.num_queries, 1)
        for t, sample in enumerate(frame_samples):
            gt = sample.gt_instances
            for q, i in ((3, 0), (7, 1)):
                x1, y1, x2, y2 = gt.bboxes[i].tolist()
                boxes[t, q] = torch.tensor([(x1 + x2) / 2 / w,
                                            (y1 + y2) / 2 / h, (x2 - x1) / w,
                                            (y2 - y1) / h])
                cls[t, q, gt.labels[i]] = 5.
        return dict(embeds=embeds, cls_scores=cls, bbox_preds=boxes)


def ookd_cfg(**kwargs):
    cfg = Config.fromfile(TOY_CFG).model
    cfg.type = 'OOKD'
    cfg.teacher = dict(config=dict(type='_ClipStatsTeacher'))
    cfg.update(kwargs)
    return cfg


def clip_sample(num_frames=4):
    video = make_video(num_frames=num_frames)
    video['data_samples'][0].set_metainfo(
        dict(key_frames_inds=[0], ref_frames_inds=list(range(1, num_frames))))
    return video


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_loss_has_kd_and_teacher_is_not_part_of_the_student():
    model = build(ookd_cfg()).train()
    teacher = model.teacher
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    student_params = {id(p) for p in model.parameters()}
    assert not any(id(p) in student_params for p in teacher.parameters())
    state = model.state_dict()
    assert not any('teacher' in k for k in state)
    assert not any(v is teacher.proj.weight for v in state.values())
    model.train()  # must not switch the teacher to training mode
    assert not teacher.training

    data = model.data_preprocessor(clip_sample(), training=True)
    losses = model(**data, mode='loss')
    assert 'loss_kd' in losses and 'loss_reid' in losses
    # cosine distance of matched pairs lies in [0, 2]
    assert 0.0 <= losses['loss_kd'].item() <= 2.0
    # the KD term reaches the student's embedding head
    (grad, ) = torch.autograd.grad(
        losses['loss_kd'],
        model.head.embed_branch.layers[-1].weight,
        retain_graph=True)
    assert grad.abs().sum() > 0
    total, _ = model.parse_losses(losses)
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_teacher_frozen_through_optimizer_steps():
    model = build(ookd_cfg()).train()
    before = copy.deepcopy(model.teacher.state_dict())
    optim = build_optim_wrapper(model,
                                dict(optimizer=dict(type='AdamW', lr=1e-3)))
    optimized = {
        id(p)
        for g in optim.optimizer.param_groups
        for p in g['params']
    }
    assert not any(id(p) in optimized for p in model.teacher.parameters())
    assert optimized == {id(p) for p in model.parameters()}
    for _ in range(2):
        data = model.data_preprocessor(clip_sample(), training=True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optim.update_params(loss)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_qfa_pairs_follow_the_ground_truth():
    """Teacher queries 3 and 7 sit exactly on GT 0 and 1: QFA must pick
    them, and the student query of lowest cost per GT."""
    model = build(ookd_cfg()).train()
    data = model.data_preprocessor(clip_sample(), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    key_imgs, ref_imgs, key_s, ref_s = model.split_key_ref(inputs, samples)
    with torch.no_grad():
        out = model.forward_frames(
            torch.cat([key_imgs, ref_imgs]), key_s + ref_s)
    knowledge, order = model.teacher_knowledge(inputs[0], samples[0])
    assert order == [0, 1, 2, 3]
    s_idx, t_idx = model.associate(out, 0, knowledge, 0, samples[0][0])
    assert t_idx.tolist() == [3, 7]
    assert len(s_idx) == 2 and all(0 <= i < 30 for i in s_idx.tolist())

    model.association = 'index'
    s_idx, t_idx = model.associate(out, 0, knowledge, 0, samples[0][0])
    assert s_idx.tolist() == t_idx.tolist() == list(range(10))


def test_teacher_sees_frames_in_time_order():
    model = build(ookd_cfg())
    video = clip_sample()
    track = video['data_samples'][0]
    # [key, ref, context...]: put frame 3 before frame 1
    perm = [0, 3, 1, 2]
    video['inputs'][0] = video['inputs'][0][perm]
    track.video_data_samples = [track[i] for i in perm]
    data = model.data_preprocessor(video, training=True)
    seen = []
    original = model.teacher.forward_clip

    def spy(imgs, frame_samples):
        seen.append([s.metainfo['frame_id'] for s in frame_samples])
        return original(imgs, frame_samples)

    model.teacher.forward_clip = spy
    _, order = model.teacher_knowledge(data['inputs'][0],
                                       data['data_samples'][0])
    assert seen == [[0, 1, 2, 3]] and order == [0, 2, 3, 1]


def test_student_checkpoint_loads_into_plain_idol():
    model = build(ookd_cfg()).eval()
    idol = build(Config.fromfile(TOY_CFG).model, seed=1).eval()
    missing = idol.load_state_dict(model.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    video = make_video(num_frames=3, with_gt=False)
    outs = []
    for m in (output_everything(model), output_everything(idol)):
        data = m.data_preprocessor(copy.deepcopy(video), training=False)
        with torch.no_grad():
            outs.append(m(**data, mode='predict')[0])
    for fa, fb in zip(outs[0], outs[1]):
        a, b = fa.pred_track_instances, fb.pred_track_instances
        assert torch.equal(a.instances_id, b.instances_id)
        assert torch.equal(a.scores, b.scores)
        assert a.masks == b.masks


def test_bad_teacher_settings_give_clear_errors(tmp_path):
    missing = str(tmp_path / 'teacher.pth')
    # testing the student never needs the teacher's files ...
    model = build(
        ookd_cfg(
            teacher=dict(
                config=dict(type='_ClipStatsTeacher'), checkpoint=missing)))
    # ... training does, and says which file is missing
    data = model.data_preprocessor(clip_sample(), training=True)
    with pytest.raises(FileNotFoundError, match='teacher.pth'):
        model.train()(**data, mode='loss')
    nope = osp.join(str(tmp_path), 'nope.py')
    with pytest.raises(FileNotFoundError, match='nope.py'):
        build(ookd_cfg(teacher=dict(config=nope))).teacher
    not_a_teacher = dict(
        type='mmdet.ChannelMapper', in_channels=[4], out_channels=4)
    with pytest.raises(RuntimeError, match='ChannelMapper.*forward_clip'):
        build(ookd_cfg(teacher=dict(config=not_a_teacher))).teacher
    with pytest.raises(ValueError, match='association'):
        build(ookd_cfg(association='hungarian'))


def test_without_kd_the_student_is_idol_and_needs_no_teacher():
    """loss_kd=None: the paper's baseline / Minor-Paste-only rows; the
    losses equal IDOL's on the same pair."""
    model = build(ookd_cfg(teacher=None, loss_kd=None)).train()
    idol = build(Config.fromfile(TOY_CFG).model).train()
    idol.load_state_dict(model.state_dict())
    video = clip_sample(num_frames=2)
    torch.manual_seed(0)
    losses = model(
        **model.data_preprocessor(copy.deepcopy(video), True), mode='loss')
    torch.manual_seed(0)
    ref = idol(
        **idol.data_preprocessor(copy.deepcopy(video), True), mode='loss')
    assert set(losses) == set(ref)
    for key in ref:
        assert torch.allclose(losses[key], ref[key]), key
    assert model._teacher is None
    with pytest.raises(KeyError, match='teacher'):
        build(ookd_cfg(teacher=None))


def test_toy_offline_teacher_without_checkpoints_gives_finite_kd():
    """A real OfflineTeacher built by the distiller is initialised (DETR's
    level_embed is not left as uninitialised memory)."""
    teacher_cfg = osp.join(
        osp.dirname(TOY_CFG), 'vita-teacher_r18-tiny_1xb2-toyvis.py')
    model = build(
        ookd_cfg(
            teacher=dict(
                config=teacher_cfg,
                checkpoint=None,
                cfg_options=dict(online_checkpoint=None)))).train()
    data = model.data_preprocessor(clip_sample(), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    assert 0.0 <= losses['loss_kd'].item() <= 2.0
