# Copyright (c) mmookd contributors. All rights reserved.
"""A teacher from another family (issue #17): mmdet's Mask2Former-VIS
behind :class:`Mask2FormerVISTeacher` distils into our IDOL student.

The adapter's ``forward_clip`` meets the interface of
:meth:`OfflineTeacher.forward_clip` (same keys, shapes, order semantics);
its checkpoints are mmdet's; the FitNets-style projection of the KD loss
trains with the student and is dropped from the exported student, which
loads strictly into plain IDOL with identical outputs; the knowledge bank
takes the adapter like our own teacher. Tiny configs, synthetic clips, CPU.
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from test_idol import TOY_CFG as IDOL_CFG
from test_idol import make_video, output_everything

import mmookd.models  # noqa: F401
from mmookd.apis import build_knowledge_bank
from mmookd.apis.export_student import export_student, student_state_dict
from mmookd.models.utils.knowledge_bank import KnowledgeBank
from mmookd.models.vis.mask2former_vis_teacher import masks_to_norm_cxcywh
from mmookd.utils import set_data_root

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIXIN = osp.join(REPO, 'configs/toy/mixin')
M2F_CFG = osp.join(MIXIN, 'mask2former-vis_r18-tiny_1xb2-toyvis.py')
TEACHER_CFG = osp.join(MIXIN, 'mask2former-vis-teacher_r18-tiny_toyvis.py')
OOKD_CFG = osp.join(MIXIN, 'ookd_r18-tiny_1xb2-toyvis_mask2former-teacher.py')

pytestmark = pytest.mark.usefixtures('single_thread')


def build(model_cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def teacher():
    return build(Config.fromfile(TEACHER_CFG).model).eval()


def test_adapter_is_mmdets_model_with_its_checkpoint_keys(teacher):
    mmdet_model = build(Config.fromfile(M2F_CFG).model, seed=1)
    assert type(mmdet_model).__name__ == 'Mask2FormerVideo'
    assert isinstance(teacher, type(mmdet_model))
    # an mmdet checkpoint loads strictly: no parameter of its own
    teacher_copy = copy.deepcopy(teacher)
    teacher_copy.load_state_dict(mmdet_model.state_dict(), strict=True)
    assert teacher_copy.state_dict().keys() == mmdet_model.state_dict().keys()


def test_forward_clip_meets_the_teacher_interface(teacher):
    """Same keys and shapes as OfflineTeacher.forward_clip
    (tests/test_models/test_offline_teacher.py::test_forward_clip_api)."""
    video = make_video(num_frames=4, hw=(64, 64))
    data = teacher.data_preprocessor(video, training=False)
    imgs, frames = data['inputs'][0], list(data['data_samples'][0])
    out = teacher.forward_clip(imgs, frames)
    assert set(out) == {
        'embeds', 'cls_scores', 'bbox_preds', 'queries', 'presence'
    }
    num_queries, chans, num_classes = 20, 32, 8
    assert out['embeds'].shape == (num_queries, chans)
    assert out['queries'].shape == (num_queries, chans)
    assert out['cls_scores'].shape == (4, num_queries, num_classes)
    assert out['bbox_preds'].shape == (4, num_queries, 4)
    assert out['presence'].shape == (4, num_queries)
    assert all(not v.requires_grad for v in out.values())
    assert all(torch.isfinite(v).all() for v in out.values())
    # normalised cxcywh: centres inside, sizes in (0, 1] (a mask may
    # cover the whole frame)
    assert ((out['bbox_preds'] > 0) & (out['bbox_preds'] <= 1)).all()
    assert (out['bbox_preds'][..., :2] < 1).all()
    # video-level classes; sigmoid of them = Mask2Former's softmax
    # probabilities of the K classes
    assert torch.equal(out['cls_scores'][0], out['cls_scores'][3])
    teacher_out = teacher._run_clip(imgs, frames)
    probs = F.softmax(teacher_out['cls'], -1)[:, :-1]
    assert torch.allclose(out['cls_scores'][0].sigmoid(), probs, atol=1e-5)
    # frames out of time order: run in order, returned in the given order
    perm = [2, 0, 3, 1]
    shuffled = teacher.forward_clip(imgs[perm], [frames[i] for i in perm])
    assert torch.allclose(shuffled['embeds'], out['embeds'], atol=1e-5)
    assert torch.allclose(
        shuffled['bbox_preds'], out['bbox_preds'][perm], atol=1e-5)
    # the teacher's mode does not matter (and is restored)
    teacher.train()
    again = teacher.forward_clip(imgs, frames)
    assert teacher.training
    teacher.eval()
    assert torch.allclose(again['embeds'], out['embeds'], atol=1e-6)
    # whole-video knowledge for the bank: video-level (N, K) classes
    video_out = teacher.video_knowledge(imgs, frames)
    assert video_out['cls_scores'].shape == (num_queries, num_classes)
    assert torch.allclose(video_out['embeds'], out['embeds'], atol=1e-6)


def test_mask_boxes():
    logits = torch.full((2, 4, 6), -1.0)
    logits[0, 1:3, 2:5] = 1.0  # rows 1-2, cols 2-4
    logits[1, 3, 0] = -0.5  # empty: one cell at the peak
    boxes = masks_to_norm_cxcywh(logits, (4, 4), (16, 24))
    x1, y1, x2, y2 = 8, 4, 20, 12
    assert torch.allclose(
        boxes[0],
        torch.tensor([(x1 + x2) / 48, (y1 + y2) / 32, (x2 - x1) / 24,
                      (y2 - y1) / 16]))
    assert torch.allclose(boxes[1, 2:], torch.tensor([4 / 24, 4 / 16]))


def ookd_model_cfg():
    cfg = Config.fromfile(OOKD_CFG).model
    cfg.teacher.checkpoint = None  # a random teacher
    return cfg


def clip_sample(num_frames=4):
    video = make_video(num_frames=num_frames)
    video['data_samples'][0].set_metainfo(
        dict(key_frames_inds=[0], ref_frames_inds=list(range(1, num_frames))))
    return video


def test_projection_trains_and_export_loads_into_plain_idol(tmp_path):
    model = build(ookd_model_cfg()).train()
    assert type(model.teacher).__name__ == 'Mask2FormerVISTeacher'
    proj = model.loss_kd.proj
    # in the student's parameters and optimiser, not the teacher's
    optim = build_optim_wrapper(model,
                                dict(optimizer=dict(type='AdamW', lr=1e-3)))
    in_optim = {
        id(p)
        for g in optim.optimizer.param_groups
        for p in g['params']
    }
    assert {id(p) for p in proj.parameters()} <= in_optim
    assert not any(id(p) in in_optim for p in model.teacher.parameters())
    before = proj.weight.detach().clone()
    data = model.data_preprocessor(clip_sample(), training=True)
    losses = model(**data, mode='loss')
    assert 0.0 <= losses['loss_kd'].item() <= 2.0
    # the KD loss trains the projection and reaches the student's
    # embedding head
    grads = torch.autograd.grad(
        losses['loss_kd'],
        [proj.weight, model.head.embed_branch.layers[-1].weight],
        retain_graph=True)
    assert all(g.abs().sum() > 0 for g in grads)
    loss, _ = model.parse_losses(losses)
    optim.update_params(loss)
    assert not torch.equal(proj.weight, before)

    # training checkpoint: with the projection; exported: without
    ckpt = str(tmp_path / 'ookd.pth')
    state = model.state_dict()
    assert {'loss_kd.proj.weight', 'loss_kd.proj.bias'} <= set(state)
    torch.save(dict(meta=dict(iter=1), state_dict=state), ckpt)
    student = str(tmp_path / 'student.pth')
    dropped = export_student(ckpt, student)
    assert sorted(dropped) == ['loss_kd.proj.bias', 'loss_kd.proj.weight']
    exported = torch.load(student)['state_dict']
    assert not any(k.startswith('loss_kd') for k in exported)
    assert student_state_dict(state)[0].keys() == exported.keys()

    # plain IDOL from the IDOL config: strict load, identical outputs
    idol = MODELS.build(Config.fromfile(IDOL_CFG).model)
    idol.load_state_dict(exported, strict=True)
    idol, model = output_everything(idol.eval()), output_everything(
        model.eval())
    video = make_video(num_frames=2, with_gt=False)
    with torch.no_grad():
        data = idol.data_preprocessor(copy.deepcopy(video), training=False)
        a = idol.forward_frames(data['inputs'][0],
                                list(data['data_samples'][0]))
        b = model.forward_frames(data['inputs'][0],
                                 list(data['data_samples'][0]))
        pa = idol(**data, mode='predict')[0]
        pb = model(**data, mode='predict')[0]
    for key in ('cls_scores', 'bbox_preds', 'embeds'):
        assert torch.equal(a[key], b[key]), key
    for fa, fb in zip(pa, pb):
        ia, ib = fa.pred_track_instances, fb.pred_track_instances
        assert torch.equal(ia.scores, ib.scores)
        assert torch.equal(ia.instances_id, ib.instances_id)


def test_projection_widths_are_checked():
    cfg = ookd_model_cfg()
    cfg.loss_kd.out_channels = 48  # not the teacher's 32
    model = build(cfg).train()
    data = model.data_preprocessor(clip_sample(), training=True)
    with pytest.raises(ValueError, match='out_channels'):
        model(**data, mode='loss')


def test_knowledge_bank_from_the_adapter(tiny_toyvis, tmp_path):
    """build_knowledge_bank runs the Mask2Former-VIS teacher over whole
    videos like our own teacher; OOKD distils from the bank through the
    projection."""
    cfg = Config.fromfile(TEACHER_CFG)
    set_data_root(cfg, tiny_toyvis)
    torch.manual_seed(0)
    teacher = MODELS.build(copy.deepcopy(cfg.model))
    teacher.init_weights()
    ckpt = str(tmp_path / 'm2f.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    bank_file = str(tmp_path / 'bank.pth')
    bank = build_knowledge_bank(cfg, ckpt, out=bank_file, log=None)
    assert len(bank) > 0 and bank.embeds.shape[1] == 32
    assert bank.meta['feature'].startswith('Mask2Former-VIS last decoder')
    assert len(KnowledgeBank.load(bank_file)) == len(bank)

    model_cfg = ookd_model_cfg()
    model_cfg.knowledge_bank = bank_file
    model = build(model_cfg).train()
    # the clip's instances 1 and 2 stand for two bank instances (as
    # Minor-Paste's instance_sources map pasted tubes to their source)
    sources = {
        i + 1: (int(bank.video_ids[j]), int(bank.instance_ids[j]))
        for i, j in enumerate((0, len(bank) - 1))
    }
    labels = torch.tensor([int(bank.labels[0]), int(bank.labels[-1])])
    video = clip_sample()
    track = video['data_samples'][0]
    for i in range(len(track)):
        track[i].set_metainfo(dict(instance_sources=sources))
        track[i].gt_instances.labels = labels.clone()
    data = model.data_preprocessor(video, training=True)
    losses = model(**data, mode='loss')
    assert 0.0 <= losses['loss_kd'].item() <= 2.0
    assert model._teacher is None  # the bank replaces the teacher
