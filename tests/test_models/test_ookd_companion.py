# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD with extra distillation terms (issue #6): config -> terms, one
loss step, gradients into the student only, zero when the student equals
the teacher's online model, and the student stays a plain IDOL."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import METRICS, MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_idol import REPO, TOY_CFG, make_video

import mmookd.models  # noqa: F401
from mmookd.models.vis.distill_terms import DistillTerms

init_default_scope('mmdet')

TEACHER_CFG = osp.join(REPO,
                       'configs/toy/token-average-teacher_r18-tiny_toyvis.py')
ONLINE_TERMS = [
    dict(type='PixelKLDistillLoss', mode='sigmoid', inputs='query_masks'),
    dict(
        type='PixelKLDistillLoss',
        mode='sigmoid',
        inputs=dict(kind='query_cls', teacher='online')),
    dict(
        type='PairwiseSimilarityDistillLoss',
        pool_kernel=2,
        inputs='mask_feats'),
    dict(
        type='CrossFrameAffinityDistillLoss',
        inputs=dict(kind='cross_frame_embeds', teacher='online')),
    dict(
        type='CrossFrameAffinityDistillLoss',
        pool_kernel=2,
        inputs='cross_frame_mask_feats'),
    dict(type='AttentionCKALoss', inputs=dict(kind='decoder_attention')),
    dict(type='InterIntraObjectDistillLoss', background_logit=0.0),
]
OTHER_TERMS = [
    dict(type='PixelKLDistillLoss', mode='sigmoid', name='loss_pkd_offline'),
    dict(type='PairwiseSimilarityDistillLoss'),
    dict(
        type='AttentionCKALoss',
        kernel='rbf',
        name='loss_cka_matched',
        inputs=dict(kind='decoder_attention', rows='matched', layers=(0, 1))),
    dict(
        type='AttentionCKALoss',
        name='loss_cka_encoder',
        inputs=dict(
            kind='decoder_attention',
            modules=r'encoder\.layers\.\d+\.self_attn$',
            rows='tokens',
            num_rows=64,
            grid_size=(8, 8))),
    dict(
        type='MotionGuidedTemporalLoss',
        activation='sigmoid',
        resolution='pred',
        oob_zero=True,
        inputs=dict(kind='track_masks', flow=dict(type='BoxFlowProvider'))),
    dict(
        type='MotionGuidedTemporalLoss',
        resolution='pred',
        inputs=dict(
            kind='semantic_maps', topk=5, flow=dict(type='ZeroFlowProvider'))),
    dict(type='InstanceTemporalConsistencyLoss'),
]


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def ookd_cfg(extra_distill, **kwargs):
    cfg = Config.fromfile(TOY_CFG).model
    cfg.type = 'OOKD'
    cfg.teacher = dict(
        config=TEACHER_CFG, cfg_options=dict(online_checkpoint=None))
    cfg.extra_distill = extra_distill
    cfg.update(kwargs)
    return cfg


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def batch(model, num_frames=4):
    video = make_video(num_frames=num_frames)
    video['data_samples'][0].set_metainfo(
        dict(key_frames_inds=[0], ref_frames_inds=list(range(1, num_frames))))
    return model.data_preprocessor(video, training=True)


def test_extra_terms_run_a_loss_step_and_train_the_student_only():
    model = build(ookd_cfg(ONLINE_TERMS + OTHER_TERMS)).train()
    # parameter-free terms: the student's state dict is IDOL's
    idol = build(Config.fromfile(TOY_CFG).model, seed=1)
    assert set(model.state_dict()) == set(idol.state_dict())
    losses = model(**batch(model), mode='loss')
    expected = {
        'loss_kd', 'loss_query_masks', 'loss_query_cls', 'loss_mask_feats',
        'loss_cross_frame_embeds', 'loss_cross_frame_mask_feats',
        'loss_decoder_attention', 'loss_object_masks', 'loss_pkd_offline',
        'loss_query_embeds', 'loss_cka_matched', 'loss_cka_encoder',
        'loss_track_masks', 'loss_semantic_maps', 'loss_track_embeds'
    }
    assert expected <= set(losses)
    for name in expected:
        assert losses[name].dim() == 0 and torch.isfinite(losses[name]), name
    assert losses['loss_decoder_attention'] > 0
    # the attention term reaches the student's deformable attention
    cross = model.detector.decoder.layers[-1].cross_attn
    (grad, ) = torch.autograd.grad(
        losses['loss_decoder_attention'],
        cross.sampling_offsets.weight,
        retain_graph=True)
    assert grad.abs().sum() > 0
    total, _ = model.parse_losses(losses)
    total.backward()
    teacher = model.teacher
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training and not teacher.online.training
    # no hook is left on either model
    for m in list(model.modules()) + list(teacher.modules()):
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_terms_vanish_when_the_student_is_the_teachers_online_model():
    model = build(ookd_cfg(ONLINE_TERMS))
    model.load_state_dict(model.teacher.online.state_dict())
    model.eval()  # same BN statistics / dropout as the frozen teacher
    with torch.no_grad():
        losses = model(**batch(model), mode='loss')
    for term in model.extra_distill:
        assert losses[term.name].item() == pytest.approx(
            0, abs=1e-5), term.name


def test_student_only_terms_need_no_teacher():
    cfg = ookd_cfg([dict(type='InstanceTemporalConsistencyLoss')],
                   loss_kd=None)
    cfg.teacher = None
    model = build(cfg).train()
    losses = model(**batch(model, num_frames=2), mode='loss')
    assert 'loss_track_embeds' in losses and 'loss_kd' not in losses
    assert model._teacher is None


def test_bad_extra_terms_give_clear_errors():
    with pytest.raises(KeyError, match='unknown extra_distill input kind'):
        build(ookd_cfg([dict(type='AttentionCKALoss', inputs='nope')]))
    with pytest.raises(ValueError, match='teacher'):
        build(
            ookd_cfg([
                dict(
                    type='PixelKLDistillLoss',
                    inputs=dict(kind='query_masks', teacher='offline'))
            ]))
    with pytest.raises(KeyError, match='no options'):
        build(
            ookd_cfg([
                dict(
                    type='AttentionCKALoss',
                    inputs=dict(kind='decoder_attention', grid=(4, 4)))
            ]))
    with pytest.raises(ValueError, match='rows'):
        build(
            ookd_cfg([
                dict(
                    type='AttentionCKALoss',
                    inputs=dict(kind='decoder_attention', rows='diagonal'))
            ]))
    with pytest.raises(KeyError, match='flow'):
        build(ookd_cfg([dict(type='MotionGuidedTemporalLoss')]))
    with pytest.raises(ValueError, match='unique'):
        build(
            ookd_cfg([
                dict(type='PairwiseSimilarityDistillLoss'),
                dict(type='PairwiseSimilarityDistillLoss')
            ]))
    cfg = ookd_cfg([dict(type='AttentionCKALoss')], loss_kd=None)
    cfg.teacher = None
    with pytest.raises(KeyError, match='teacher'):
        build(cfg)


COMPANION_CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs/toy/companion/*.py')) +
    glob.glob(osp.join(REPO, 'configs/ookd/companion/*.py')))


@pytest.mark.parametrize(
    'path',
    COMPANION_CONFIGS,
    ids=[osp.relpath(c, REPO) for c in COMPANION_CONFIGS])
def test_companion_configs_parse_and_build_their_terms(path):
    cfg = Config.fromfile(path)
    assert 'mmookd' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmdet' and cfg.model.type == 'OOKD'
    terms = DistillTerms(cfg.model.get('extra_distill'))
    if 'eval-tc' in path:
        evaluators = cfg.val_evaluator
        assert [e['type'] for e in evaluators
                ] == ['YTVISMetric', 'TemporalConsistencyMetric']
        for evaluator in evaluators:  # the flow net is built lazily
            METRICS.build(evaluator)
    else:
        assert len(terms) >= 1


@pytest.mark.parametrize('term,key', [('cka', 'loss_cka'),
                                      ('tl-dis', 'loss_tl')])
def test_toy_companion_config_runs_a_loss_step(term, key):
    path = osp.join(
        REPO, f'configs/toy/companion/ookd-{term}_r18-tiny_1xb2-toyvis.py')
    cfg = Config.fromfile(path).model
    cfg.teacher.checkpoint = None  # random teacher: no trained files here
    cfg.teacher.cfg_options = dict(online_checkpoint=None)
    model = build(cfg).train()
    losses = model(**batch(model), mode='loss')
    assert losses[key] > 0 and 'loss_kd' in losses
