# Copyright (c) mmookd contributors. All rights reserved.
"""Recorders expose the toy IDOL's deformable attention (exactly as mmcv
computes it) and mask features without changing its code paths, and the
attention rasterises onto a common grid."""
import copy

import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention, multi_scale_deform_attn
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_idol import TOY_CFG, make_video

import mmookd.models  # noqa: F401
from mmookd.models.utils import (
    DeformableAttentionRecorder,
    MethodOutputsRecorder,
    attention_cells_by_columns,
    rasterize_deformable_attention,
)

init_default_scope('mmdet')


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(scope='module')
def idol():
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TOY_CFG).model)
    model.init_weights()
    # non-trivial, query-dependent attention (mmcv's init is uniform)
    for m in model.modules():
        if isinstance(m, MultiScaleDeformableAttention):
            torch.nn.init.normal_(m.attention_weights.weight, std=0.5)
            torch.nn.init.normal_(m.sampling_offsets.weight, std=0.1)
    return model.eval()


@pytest.fixture(scope='module')
def frames(idol):
    data = idol.data_preprocessor(make_video(num_frames=2), training=True)
    return data['inputs'][0], list(data['data_samples'][0])


def test_recorded_attention_is_mmcv_attention(idol, frames):
    imgs, samples = frames
    extra = {}
    handles = []
    for name, m in idol.named_modules():
        if name.endswith('decoder.layers.1.cross_attn'):
            handles.append(
                m.value_proj.register_forward_hook(
                    lambda mod, a, out: extra.__setitem__('value', out)))
            handles.append(
                m.output_proj.register_forward_pre_hook(
                    lambda mod, a: extra.__setitem__('core', a[0])))
            module = m
    with torch.no_grad(), DeformableAttentionRecorder(idol) as rec:
        idol.forward_frames(imgs, samples)
    for h in handles:
        h.remove()
    assert rec.names == [
        'detector.decoder.layers.0.cross_attn',
        'detector.decoder.layers.1.cross_attn'
    ]
    record = rec.records['detector.decoder.layers.1.cross_attn'][0]
    b, nq = 2, 30
    heads, levels, points = (module.num_heads, module.num_levels,
                             module.num_points)
    weights = record['attention_weights']
    assert weights.shape == (b, nq, heads, levels, points)
    assert torch.allclose(weights.sum((-1, -2)), torch.ones(b, nq, heads))
    assert record['sampling_locations'].shape == (b, nq, heads, levels, points,
                                                  2)
    # mmcv's own sampling with the recorded weights and locations gives
    # the module's output exactly
    value = extra['value'].view(b, -1, heads, module.embed_dims // heads)
    core = multi_scale_deform_attn.multi_scale_deformable_attn_pytorch(
        value, record['spatial_shapes'], record['sampling_locations'], weights)
    assert torch.allclose(core, extra['core'], atol=1e-5)


def test_recorder_leaves_no_hooks_and_changes_nothing(idol, frames):
    imgs, samples = frames
    with torch.no_grad():
        before = idol.forward_frames(imgs, samples)
        with DeformableAttentionRecorder(
                idol, r'encoder\.layers\.\d+\.self_attn$') as rec:
            during = idol.forward_frames(imgs, samples)
        after = idol.forward_frames(imgs, samples)
    assert len(rec.records) == 2  # the 2 encoder layers
    for key in ('cls_scores', 'bbox_preds', 'embeds', 'mask_feats'):
        assert torch.equal(before[key], during[key])
        assert torch.equal(before[key], after[key])
    for m in idol.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    with pytest.raises(ValueError, match='matches'):
        DeformableAttentionRecorder(idol, 'no_such_module')


def test_recorded_attention_carries_gradients(idol, frames):
    imgs, samples = frames
    model = copy.deepcopy(idol).train()
    with DeformableAttentionRecorder(model) as rec:
        model.forward_frames(imgs, samples)
    record = rec.layer_records()[-1]
    maps = rasterize_deformable_attention(record['sampling_locations'],
                                          record['attention_weights'], (4, 6))
    maps.pow(2).sum().backward()
    cross = model.detector.decoder.layers[-1].cross_attn
    assert cross.attention_weights.weight.grad.abs().sum() > 0
    assert cross.sampling_offsets.weight.grad.abs().sum() > 0


def test_method_outputs_recorder_exposes_mask_features(idol, frames):
    imgs, samples = frames
    head = idol.mask_head
    with torch.no_grad(), MethodOutputsRecorder(head,
                                                'forward_mask_feats') as rec:
        out = idol.forward_frames(imgs, samples)
    assert len(rec.outputs) == 1
    assert torch.equal(rec.outputs[0], out['mask_feats'])
    assert 'forward_mask_feats' not in vars(head)
    with pytest.raises(AttributeError):
        MethodOutputsRecorder(head, 'nope')


def test_rasterize_mass_location_and_layout():
    # one point per (query, head) at the centre of cell (row 1, col 2) of
    # a 3 x 4 grid: all its weight lands there
    loc = torch.tensor([(2 + 0.5) / 4, (1 + 0.5) / 3]).view(1, 1, 1, 1, 1, 2)
    maps = rasterize_deformable_attention(loc, torch.ones(1, 1, 1, 1, 1),
                                          (3, 4))
    expected = torch.zeros(12)
    expected[1 * 4 + 2] = 1
    assert torch.allclose(maps.view(-1), expected)
    # random points inside: the mass is kept; a different number of
    # levels / points / heads maps onto the same grid
    g = torch.Generator().manual_seed(0)
    for heads, levels, points in ((4, 4, 4), (8, 3, 2)):
        loc = torch.rand(2, 5, heads, levels, points, 2, generator=g)
        loc = loc * 0.8 + 0.1
        w = torch.rand(
            2, 5, heads, levels * points,
            generator=g).softmax(-1).view(2, 5, heads, levels, points)
        maps = rasterize_deformable_attention(loc, w, (6, 7))
        assert maps.shape == (2, 5, heads, 42)
        assert torch.allclose(maps.sum(-1), torch.ones(2, 5, heads))
        assert attention_cells_by_columns(maps).shape == (2, 42, heads * 5)
    # points outside lose their mass
    outside = rasterize_deformable_attention(
        torch.full((1, 1, 1, 1, 1, 2), 2.0), torch.ones(1, 1, 1, 1, 1), (3, 3))
    assert outside.sum() == 0
