# Copyright (c) mmookd contributors. All rights reserved.
"""The host-sync free deformable attention and the compiled network of the
fast path (issue 15): mmcv's numbers, one capturable graph. CPU."""
import copy
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttention,
    multi_scale_deformable_attn_pytorch,
)
from torch._dynamo.utils import counters
from torch._subclasses.fake_tensor import FakeTensorMode

from mmookd.apis import StreamingVISInferencer, init_vis_model
from mmookd.models.layers import (
    StaticShapeMSDeformAttn,
    ms_deform_attn,
    use_static_shape_attention,
)
from mmookd.models.vis.compiled_network import compile_network
from mmookd.utils.sync_count import count_syncs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')
SHAPES = [(8, 12), (4, 6), (2, 3)]


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def _inputs(bs=2, heads=4, dims=8, queries=5, points=3):
    g = torch.Generator().manual_seed(0)
    keys = sum(h * w for h, w in SHAPES)
    value = torch.randn(bs, keys, heads, dims, generator=g)
    loc = torch.rand(bs, queries, heads, len(SHAPES), points, 2, generator=g)
    weights = torch.rand(bs, queries, heads, len(SHAPES), points, generator=g)
    spatial = torch.tensor(SHAPES)
    start = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    return value, spatial, start, loc, weights


def test_op_equals_mmcv_and_has_a_fake_impl():
    value, spatial, start, loc, weights = _inputs()
    flat = [v for hw in SHAPES for v in hw]
    out = torch.ops.mmookd.ms_deform_attn(value, spatial, start, loc, weights,
                                          flat, 64)
    ref = multi_scale_deformable_attn_pytorch(value, spatial, loc, weights)
    assert torch.equal(out, ref)
    assert torch.equal(
        ms_deform_attn(value, spatial, start, loc, weights, flat, 64), ref)
    with FakeTensorMode() as mode:
        fake = ms_deform_attn(
            *(mode.from_tensor(t)
              for t in (value, spatial, start, loc, weights)), flat, 64)
    assert fake.shape == (2, 5, 32)


def test_static_shape_module_equals_mmcv_module_without_syncs():
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(
        embed_dims=32,
        num_heads=4,
        num_levels=3,
        num_points=2,
        batch_first=True).eval()
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.1)
    static = copy.deepcopy(attn)
    holder = torch.nn.Sequential(static)
    assert use_static_shape_attention(holder) == 1
    assert isinstance(static, StaticShapeMSDeformAttn)
    value, spatial, start, _, _ = _inputs()
    keys = value.shape[1]
    query = torch.randn(2, keys, 32)
    ref_points = torch.rand(2, keys, 3, 2)
    kwargs = dict(
        query=query,
        reference_points=ref_points,
        spatial_shapes=spatial,
        level_start_index=start)
    with torch.no_grad():
        expected = attn(**kwargs)
        assert torch.equal(static(**kwargs), expected)  # reference path
        out, report = count_syncs(
            lambda: static(**kwargs, spatial_shapes_list=SHAPES))
    assert torch.equal(out, expected)
    assert report.syncs == 0 and report.downloads == 0
    _, report = count_syncs(lambda: attn(**kwargs))
    assert report.syncs > 0  # mmcv's reads the shapes on the host
    with pytest.raises(ValueError, match='do not cover'):
        static(**kwargs, spatial_shapes_list=SHAPES[:2])


def test_network_compiles_to_one_graph_with_the_same_outputs():
    """The fast path's network is captured whole (``fullgraph=True``: no
    graph break, the custom op traced through its fake implementation) and
    gives the eager outputs; the fast path with ``test_cfg.compile`` gives
    the eager fast path's tracks. (``aot_eager`` captures the same graph as
    inductor without generating code: CPU test time.)"""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = init_vis_model(
            TOY_CFG,
            cfg_options={
                'model.test_cfg.select_thr': 0.0,
                'model.tracker.init_score_thr': 0.0,
                'model.tracker.addnew_score_thr': 0.0,
            })
    inferencer = StreamingVISInferencer(
        model, pipeline=[dict(type='LoadImageFromNDArray')])
    rng = np.random.RandomState(0)
    frames = [rng.randint(0, 255, (64, 96, 3), np.uint8) for _ in range(3)]
    inputs, sample = inferencer.preprocess(frames[0])
    fast = model.fast_path()
    compiled = compile_network(
        fast.network, backend='aot_eager', fullgraph=True)
    with torch.no_grad():
        eager = fast.network(inputs, [sample])
        out = compiled(inputs, [sample])
    for key in ('hidden_states', 'cls_scores', 'bbox_preds', 'embeds',
                'mask_feats'):
        torch.testing.assert_close(out[key], eager[key], rtol=1e-4, atol=1e-4)
    results = {}
    for setting in (False, dict(backend='aot_eager', fullgraph=True)):
        model.test_cfg.update(fast=True, compile=setting)
        model._fast_path = None
        inferencer.reset()
        results[bool(setting)] = [inferencer(f) for f in frames]
        if setting:  # the compiled network keeps the frame sync-free
            # (no download counter: a TorchFunctionMode makes dynamo
            # retrace; the host code that downloads is not compiled)
            graphs = dict(counters['stats'])
            _, report = count_syncs(
                lambda: inferencer(frames[0]), count_downloads=False)
            assert report.syncs == 0
            assert dict(counters['stats']) == graphs  # no recompilation
    model.test_cfg.update(fast=False, compile=False)
    for a, b in zip(results[False], results[True]):
        assert a.track_ids.tolist() == b.track_ids.tolist()
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
