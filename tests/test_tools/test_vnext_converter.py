# Copyright (c) mmookd contributors. All rights reserved.
"""The VNext IDOL checkpoint converter on a synthetic official state dict.

The official key names and shapes are generated from the VNext source
(``projects/IDOL/idol/{idol.py, models/deformable_detr.py,
models/deformable_transformer.py, models/segmentation_condInst.py,
models/ops/modules/ms_deform_attn.py, backbone/swin.py}``) and detectron2's
ResNet, so a rename slip shows up as a strict-load failure or a value in the
wrong place.
"""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmookd  # noqa: F401
from mmookd.utils import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs/idol/idol_r50_8xb4-12k_youtubevis2021.py')


def _load_tool():
    path = osp.join(ROOT, 'tools/model_converters/vnext_idol_to_mmookd.py')
    return load_tool(path, 'vnext_idol_conv')


tool = _load_tool()

C, FFN, HEADS, LEVELS, POINTS, Q, K = 256, 1024, 8, 4, 4, 300, 40
# Swin-L (MODEL.SWIN of IDOL's ytvis21_swinL.yaml)
SWIN_EMBED, SWIN_WINDOW = 192, 12
SWIN_DEPTHS, SWIN_HEADS = (2, 2, 18, 2), (6, 12, 24, 48)
SWIN_CFG = osp.join(
    ROOT, 'configs/idol/idol_swin-l-p4-w12-384_8xb4-12k_youtubevis2021.py')


def _swin_relative_position_index(window: int) -> torch.Tensor:
    """The official ``WindowAttention.relative_position_index`` buffer."""
    coords = torch.stack(
        torch.meshgrid(
            torch.arange(window), torch.arange(window), indexing='ij'))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


def _add_swin_l(add, sd, bb: str) -> None:
    """Official ``D2SwinTransformer`` keys and shapes of Swin-L.

    ``projects/IDOL/idol/backbone/swin.py``: ``patch_embed.{proj, norm}``,
    ``layers.i.blocks.j.{norm1, attn, norm2, mlp}``, a ``PatchMerging``
    ``downsample`` after stages 0-2 and ``norm{0..3}`` (``out_indices``
    keeps its default (0, 1, 2, 3) in ``D2SwinTransformer``).
    """
    add(bb + 'patch_embed.proj.weight', SWIN_EMBED, 3, 4, 4)
    for f in ('patch_embed.proj.bias', 'patch_embed.norm.weight',
              'patch_embed.norm.bias'):
        add(bb + f, SWIN_EMBED)
    index = _swin_relative_position_index(SWIN_WINDOW)
    for i, (depth, heads) in enumerate(zip(SWIN_DEPTHS, SWIN_HEADS)):
        dim = SWIN_EMBED * 2**i
        for j in range(depth):
            p = f'{bb}layers.{i}.blocks.{j}.'
            for f in ('norm1', 'norm2'):
                add(f'{p}{f}.weight', dim)
                add(f'{p}{f}.bias', dim)
            add(p + 'attn.relative_position_bias_table',
                (2 * SWIN_WINDOW - 1)**2, heads)
            sd['detr.' + p + 'attn.relative_position_index'] = index.clone()
            add(p + 'attn.qkv.weight', 3 * dim, dim)
            add(p + 'attn.qkv.bias', 3 * dim)
            add(p + 'attn.proj.weight', dim, dim)
            add(p + 'attn.proj.bias', dim)
            add(p + 'mlp.fc1.weight', 4 * dim, dim)
            add(p + 'mlp.fc1.bias', 4 * dim)
            add(p + 'mlp.fc2.weight', dim, 4 * dim)
            add(p + 'mlp.fc2.bias', dim)
        if i < len(SWIN_DEPTHS) - 1:
            p = f'{bb}layers.{i}.downsample.'
            add(p + 'reduction.weight', 2 * dim, 4 * dim)  # no bias
            add(p + 'norm.weight', 4 * dim)
            add(p + 'norm.bias', 4 * dim)
        add(f'{bb}norm{i}.weight', dim)
        add(f'{bb}norm{i}.bias', dim)


def _official_state_dict(
        backbone: str = 'r50') -> 'OrderedDict[str, torch.Tensor]':
    """Random official IDOL R50 / Swin-L state dict (``IDOL``-level keys)."""
    g = torch.Generator().manual_seed(0)
    sd = OrderedDict()

    def add(name, *shape):
        sd['detr.' + name] = torch.randn(*shape, generator=g)

    def frozen_bn(prefix, ch):
        for f in ('weight', 'bias', 'running_mean', 'running_var'):
            add(f'{prefix}.norm.{f}', ch)

    bb = 'detr.backbone.0.backbone.'
    if backbone == 'swin-l':
        _add_swin_l(add, sd, bb)
        _add_detector(add, sd, [SWIN_EMBED * 2**i for i in (1, 2, 3)])
        return sd
    add(bb + 'stem.conv1.weight', 64, 3, 7, 7)
    frozen_bn(bb + 'stem.conv1', 64)
    in_ch = 64
    for stage, (blocks, mid) in enumerate([(3, 64), (4, 128), (6, 256),
                                           (3, 512)],
                                          start=2):
        out_ch = mid * 4
        for b in range(blocks):
            p = f'{bb}res{stage}.{b}.'
            if b == 0:
                add(p + 'shortcut.weight', out_ch, in_ch, 1, 1)
                frozen_bn(p + 'shortcut', out_ch)
            add(p + 'conv1.weight', mid, in_ch, 1, 1)
            frozen_bn(p + 'conv1', mid)
            add(p + 'conv2.weight', mid, mid, 3, 3)
            frozen_bn(p + 'conv2', mid)
            add(p + 'conv3.weight', out_ch, mid, 1, 1)
            frozen_bn(p + 'conv3', out_ch)
            in_ch = out_ch
    _add_detector(add, sd, [512, 1024, 2048])
    return sd


def _add_detector(add, sd, channels) -> None:
    """Everything after the backbone; ``channels``: C3-C5 widths."""
    # 1x1 convs on C3-C5, then the 3x3 stride-2 conv on C5
    kernels = [(c, 1) for c in channels] + [(channels[-1], 3)]
    for lvl, (ch, ks) in enumerate(kernels):
        add(f'detr.input_proj.{lvl}.0.weight', C, ch, ks, ks)
        add(f'detr.input_proj.{lvl}.0.bias', C)
        add(f'detr.input_proj.{lvl}.1.weight', C)
        add(f'detr.input_proj.{lvl}.1.bias', C)

    def ms_deform(prefix):
        add(prefix + 'sampling_offsets.weight', HEADS * LEVELS * POINTS * 2, C)
        add(prefix + 'sampling_offsets.bias', HEADS * LEVELS * POINTS * 2)
        add(prefix + 'attention_weights.weight', HEADS * LEVELS * POINTS, C)
        add(prefix + 'attention_weights.bias', HEADS * LEVELS * POINTS)
        for proj in ('value_proj', 'output_proj'):
            add(f'{prefix}{proj}.weight', C, C)
            add(f'{prefix}{proj}.bias', C)

    def ffn_norms(prefix, norms):
        add(prefix + 'linear1.weight', FFN, C)
        add(prefix + 'linear1.bias', FFN)
        add(prefix + 'linear2.weight', C, FFN)
        add(prefix + 'linear2.bias', C)
        for n in norms:
            add(f'{prefix}{n}.weight', C)
            add(f'{prefix}{n}.bias', C)

    add('detr.transformer.level_embed', LEVELS, C)
    for i in range(6):
        p = f'detr.transformer.encoder.layers.{i}.'
        ms_deform(p + 'self_attn.')
        ffn_norms(p, ('norm1', 'norm2'))
    for i in range(6):
        p = f'detr.transformer.decoder.layers.{i}.'
        ms_deform(p + 'cross_attn.')
        add(p + 'self_attn.in_proj_weight', 3 * C, C)
        add(p + 'self_attn.in_proj_bias', 3 * C)
        add(p + 'self_attn.out_proj.weight', C, C)
        add(p + 'self_attn.out_proj.bias', C)
        ffn_norms(p, ('norm1', 'norm2', 'norm3'))
    add('detr.transformer.reference_points.weight', 2, C)
    add('detr.transformer.reference_points.bias', 2)
    add('detr.query_embed.weight', Q, 2 * C)
    for i in range(6):
        add(f'detr.class_embed.{i}.weight', K, C)
        add(f'detr.class_embed.{i}.bias', K)
        for j, out in enumerate((C, C, 4)):
            add(f'detr.bbox_embed.{i}.layers.{j}.weight', out, C)
            add(f'detr.bbox_embed.{i}.layers.{j}.bias', out)
    # with_box_refine registers bbox_embed a second time in the decoder.
    for i in range(6):
        for j in range(3):
            for f in ('weight', 'bias'):
                sd[f'detr.detr.transformer.decoder.bbox_embed.{i}.layers.'
                   f'{j}.{f}'] = sd[f'detr.detr.bbox_embed.{i}.layers.{j}.{f}']
    # CondInst_segm heads: 169 = (8+2)*8 + 8*8 + 8 + 8 + 8 + 1.
    for j, out in enumerate((C, C, 169)):
        add(f'controller.layers.{j}.weight', out, C)
        add(f'controller.layers.{j}.bias', out)
    for name, out, inp in (('lay1', 64, C), ('lay2', 8, 64), ('lay3', C, C),
                           ('lay4', C, C), ('dcn', C, C)):
        add(f'mask_head.{name}.weight', out, inp, 3, 3)
        add(f'mask_head.{name}.bias', out)
    for j in range(3):
        add(f'reid_embed_head.layers.{j}.weight', C, C)
        add(f'reid_embed_head.layers.{j}.bias', C)


@pytest.fixture(scope='module')
def model():
    init_default_scope('mmdet')
    cfg = Config.fromfile(CFG)
    # the shipped config keeps the official input_proj conv biases
    assert cfg.model.detector.neck.bias is True
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def official():
    return _official_state_dict()


def test_convert_and_strict_load(model, official):
    unmapped = []
    converted = tool.convert_vnext_idol(official, unmapped)
    assert unmapped == []
    model.load_state_dict(converted, strict=True)
    sd = model.state_dict()
    src = official

    def same(ours, theirs):
        assert torch.equal(sd[ours], src['detr.' + theirs]), ours

    det = 'detector.'
    dec = 'detr.transformer.decoder.layers.2.'
    same(det + 'decoder.layers.2.cross_attn.sampling_offsets.weight',
         dec + 'cross_attn.sampling_offsets.weight')
    same(det + 'decoder.layers.2.self_attn.attn.in_proj_weight',
         dec + 'self_attn.in_proj_weight')
    same(det + 'decoder.layers.2.self_attn.attn.out_proj.bias',
         dec + 'self_attn.out_proj.bias')
    # decoder norms in execution order: norm2, norm1, norm3
    same(det + 'decoder.layers.2.norms.0.weight', dec + 'norm2.weight')
    same(det + 'decoder.layers.2.norms.1.weight', dec + 'norm1.weight')
    same(det + 'decoder.layers.2.norms.2.bias', dec + 'norm3.bias')
    same(det + 'decoder.layers.2.ffn.layers.0.0.weight',
         dec + 'linear1.weight')
    same(det + 'decoder.layers.2.ffn.layers.1.bias', dec + 'linear2.bias')
    enc = 'detr.transformer.encoder.layers.4.'
    same(det + 'encoder.layers.4.norms.0.bias', enc + 'norm1.bias')
    same(det + 'encoder.layers.4.norms.1.weight', enc + 'norm2.weight')
    same(det + 'encoder.layers.4.self_attn.value_proj.weight',
         enc + 'self_attn.value_proj.weight')
    # query embedding: both split the 512 columns as (pos, content)
    same(det + 'query_embedding.weight', 'detr.query_embed.weight')
    same(det + 'reference_points_fc.weight',
         'detr.transformer.reference_points.weight')
    same(det + 'level_embed', 'detr.transformer.level_embed')
    same(det + 'bbox_head.cls_branches.3.bias', 'detr.class_embed.3.bias')
    same(det + 'bbox_head.reg_branches.3.4.weight',
         'detr.bbox_embed.3.layers.2.weight')
    same(det + 'bbox_head.reg_branches.5.2.bias',
         'detr.bbox_embed.5.layers.1.bias')
    same(det + 'bbox_head.embed_branch.layers.2.weight',
         'reid_embed_head.layers.2.weight')
    same('mask_head.controller.layers.2.weight', 'controller.layers.2.weight')
    same('mask_head.controller.layers.0.bias', 'controller.layers.0.bias')
    same('mask_head.mask_branch.fuse_convs.0.weight', 'mask_head.lay3.weight')
    same('mask_head.mask_branch.fuse_convs.2.bias', 'mask_head.dcn.bias')
    same('mask_head.mask_branch.out_convs.0.weight', 'mask_head.lay1.weight')
    same('mask_head.mask_branch.out_convs.1.bias', 'mask_head.lay2.bias')
    same(det + 'neck.convs.2.conv.bias', 'detr.input_proj.2.0.bias')
    same(det + 'neck.convs.0.gn.weight', 'detr.input_proj.0.1.weight')
    same(det + 'neck.extra_convs.0.conv.weight', 'detr.input_proj.3.0.weight')
    bb = 'detr.backbone.0.backbone.'
    same(det + 'backbone.conv1.weight', bb + 'stem.conv1.weight')
    same(det + 'backbone.bn1.running_var', bb + 'stem.conv1.norm.running_var')
    same(det + 'backbone.layer3.5.conv2.weight', bb + 'res4.5.conv2.weight')
    same(det + 'backbone.layer3.5.bn3.bias', bb + 'res4.5.conv3.norm.bias')
    same(det + 'backbone.layer4.0.downsample.0.weight',
         bb + 'res5.0.shortcut.weight')
    same(det + 'backbone.layer4.0.downsample.1.running_mean',
         bb + 'res5.0.shortcut.norm.running_mean')
    assert int(sd[det + 'backbone.layer2.1.bn2.num_batches_tracked']) == 0


def test_condinst_level_and_ddp_keys(official):
    """Keys of a bare ``CondInst_segm`` (one ``detr.`` less) and DDP."""
    full = tool.convert_vnext_idol(official)
    bare = OrderedDict(
        ('module.' + k[len('detr.'):], v) for k, v in official.items())
    converted = tool.convert_vnext_idol(bare)
    assert list(converted) == list(full)


def test_compare_and_cli(model, official, tmp_path, monkeypatch):
    converted = tool.convert_vnext_idol(official)
    del converted['mask_head.controller.layers.1.bias']
    converted['detector.extra'] = torch.zeros(1)
    missing, unexpected, mismatched = tool.compare_with_model(
        converted, model.state_dict())
    assert missing == ['mask_head.controller.layers.1.bias']
    assert unexpected == ['detector.extra'] and mismatched == []

    src = str(tmp_path / 'idol.pth')
    torch.save(dict(model=official, iteration=1), src)
    dst = str(tmp_path / 'out.pth')
    seen = []
    monkeypatch.setattr(tool, '_build_model_state',
                        lambda cfg: seen.append(cfg) or model.state_dict())
    assert tool.main([src, dst]) == 0
    assert seen == [tool.DEFAULT_CONFIG]  # a ResNet checkpoint
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved['state_dict']) == set(model.state_dict())
    # refuses to overwrite without --force
    with pytest.raises(FileExistsError, match='exists already'):
        tool.main([src, dst])
    assert tool.main([src, dst, '--force']) == 0

    # an unfilled parameter fails unless --allow-missing
    partial = OrderedDict(
        (k, v) for k, v in official.items() if 'controller' not in k)
    torch.save(dict(model=partial), src)
    with pytest.raises(ValueError, match='conversion incomplete'):
        tool.main([src, dst, '--force'])
    assert tool.main([src, dst, '--force', '--allow-missing']) == 0


# ---------------------------------------------------------------------------
# Swin-L
# ---------------------------------------------------------------------------


def _official_patch_merging(x: torch.Tensor, hw: tuple, norm_w, norm_b,
                            reduction_w) -> torch.Tensor:
    """The official ``PatchMerging.forward`` (even H and W)."""
    (h, w), (b, _, c) = hw, x.shape
    x = x.view(b, h, w, c)
    x = torch.cat([
        x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]
    ], -1).view(b, -1, 4 * c)
    x = torch.nn.functional.layer_norm(x, (4 * c, ), norm_w, norm_b)
    return x @ reduction_w.t()


def test_swin_l_convert_and_strict_load():
    """Official Swin-L IDOL -> the Swin-L config's model, strictly."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(SWIN_CFG)
    assert cfg.model.detector.neck.in_channels == [384, 768, 1536]
    model = MODELS.build(cfg.model)
    official = _official_state_dict('swin-l')
    bb = 'detr.detr.backbone.0.backbone.'
    ours = 'detector.backbone.'
    # mmdet computes the same relative position index as the official code
    index = official[bb + 'layers.2.blocks.7.attn.relative_position_index']
    mine = model.state_dict()[
        ours + 'stages.2.blocks.7.attn.w_msa.relative_position_index']
    assert torch.equal(mine, index)

    unmapped = []
    converted = tool.convert_vnext_idol(official, unmapped)
    assert unmapped == []
    assert tool.is_swin(converted)
    assert not any('norm0' in k for k in converted)  # unused C2 norm
    model.load_state_dict(converted, strict=True)
    sd = model.state_dict()

    def same(mine, theirs):
        assert torch.equal(sd[ours + mine], official[bb + theirs]), mine

    same('patch_embed.projection.weight', 'patch_embed.proj.weight')
    same('patch_embed.norm.bias', 'patch_embed.norm.bias')
    same('stages.2.blocks.17.attn.w_msa.qkv.weight',
         'layers.2.blocks.17.attn.qkv.weight')
    same('stages.3.blocks.1.attn.w_msa.proj.bias',
         'layers.3.blocks.1.attn.proj.bias')
    same('stages.1.blocks.0.attn.w_msa.relative_position_bias_table',
         'layers.1.blocks.0.attn.relative_position_bias_table')
    same('stages.0.blocks.1.ffn.layers.0.0.weight',
         'layers.0.blocks.1.mlp.fc1.weight')
    same('stages.0.blocks.1.ffn.layers.1.bias',
         'layers.0.blocks.1.mlp.fc2.bias')
    same('stages.2.blocks.3.norm2.weight', 'layers.2.blocks.3.norm2.weight')
    same('norm3.weight', 'norm3.weight')
    assert torch.equal(sd['detector.neck.convs.0.conv.weight'],
                       official['detr.detr.input_proj.0.0.weight'])
    # the patch-merging weights are permuted, not copied ...
    red = official[bb + 'layers.1.downsample.reduction.weight']
    assert not torch.equal(sd[ours + 'stages.1.downsample.reduction.weight'],
                           red)
    # ... so that mmdet's Unfold-based merging computes the official one
    merge = model.detector.backbone.stages[1].downsample
    x = torch.randn(2, 6 * 8, 384)
    with torch.no_grad():
        mine, out_hw = merge(x, (6, 8))
    theirs = _official_patch_merging(
        x, (6, 8), official[bb + 'layers.1.downsample.norm.weight'],
        official[bb + 'layers.1.downsample.norm.bias'], red)
    assert tuple(out_hw) == (3, 4)
    torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)
