# Copyright (c) mmookd contributors. All rights reserved.
"""Convert an official VNext IDOL checkpoint (ResNet or Swin) to mmookd.

The official model (github.com/wjf5203/VNext, ``projects/IDOL``) nests as
``IDOL.detr = CondInst_segm`` and ``CondInst_segm.detr = DeformableDETR``, so
its state dict keys look like ``detr.detr.transformer...`` (detector) and
``detr.controller...`` / ``detr.mask_head...`` / ``detr.reid_embed_head...``
(mask and embedding heads). Both that layout and the one of a bare
``CondInst_segm`` (``detr.transformer...``, ``controller...``) are accepted,
as is a ``module.`` (DDP) prefix.

Every mapping is a pure rename: both sides use ``nn.MultiheadAttention``
packing (``in_proj_weight`` = [q; k; v]), mmdet 3.x splits the
``(num_queries, 2 * C)`` query embedding as ``(query_pos, query)`` exactly
like Deformable-DETR's ``(query_embed, tgt)``, and both models take RGB input
with the ImageNet mean/std, so no tensor is reordered. The renames that are
not obvious:

* detectron2 ResNet (``stem.conv1``, ``res{2..5}.i.conv{k}.norm``,
  ``shortcut``) -> mmdet ResNet (``conv1``/``bn1``, ``layer{1..4}.i.bn{k}``,
  ``downsample.0/1``). FrozenBN has no ``num_batches_tracked``; it is set to
  0 (unused by the frozen, eval-mode BN).
* Deformable-DETR decoder layers apply ``norm2`` after self-attention,
  ``norm1`` after cross-attention and ``norm3`` after the FFN; mmdet's
  ``norms.0/1/2`` follow execution order, hence 2->0, 1->1, 3->2.
* ``input_proj`` 1x1 convs -> ChannelMapper ``convs``, the 3x3 stride-2 conv
  on raw C5 -> ``extra_convs``. The official convs have a bias (before the
  GroupNorm, where it is NOT a no-op); the target model must be built with
  ``neck.bias=True`` to hold it, otherwise those keys are reported as
  dropped.
* ``MaskHeadSmallConv``: ``lay3`` (coarsest level), ``lay4``, ``dcn`` (a
  plain conv despite the name) -> ``fuse_convs.0/1/2``; ``lay1``, ``lay2``
  -> ``out_convs.0/1``.
* ``transformer.decoder.bbox_embed`` is the same module as ``bbox_embed``
  (box-refinement hack), saved twice; the copy is checked and skipped.
* Swin (``D2SwinTransformer`` of ``projects/IDOL/idol/backbone/swin.py``,
  the Microsoft Swin code) -> mmdet ``SwinTransformer``, the renames of
  mmdet's own ``swin_converter``: ``patch_embed.proj`` -> ``projection``,
  ``layers`` -> ``stages``, ``attn.*`` -> ``attn.w_msa.*`` (the
  ``relative_position_index`` buffers are identical), ``mlp.fc1/fc2`` ->
  ``ffn.layers.0.0/1``. The official ``PatchMerging`` concatenates the
  2x2 neighbours as ``[x(0,0), x(1,0), x(0,1), x(1,1)]`` blocks of C
  channels while mmdet's ``nn.Unfold`` yields channel-major
  ``[c * 4 + (0,0), (0,1), (1,0), (1,1)]``, so ``downsample.reduction``
  (input columns) and ``downsample.norm`` are permuted accordingly; this is
  the only tensor that is reordered. ``norm0`` normalises the stride-4
  output, which IDOL never uses (``backbone.num_channels =
  d2_backbone.num_channels[1:]`` in ``idol.py``; mmookd builds Swin with
  ``out_indices=(1, 2, 3)``), and is skipped.

Usage::

    python tools/model_converters/vnext_idol_to_mmookd.py \\
        IDOL_YTVIS21_R50.pth checkpoints/idol_r50_ytvis21_mmookd.pth
    # a Swin checkpoint is checked against the Swin-L config by default
    python tools/model_converters/vnext_idol_to_mmookd.py \\
        YTVIS21_SwinL_608AP-002.pth checkpoints/idol_swin-l_ytvis21_mmookd.pth
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(_REPO,
                          'configs/idol/idol_r50_8xb4-12k_youtubevis2021.py')
DEFAULT_SWIN_CONFIG = osp.join(
    _REPO, 'configs/idol/idol_swin-l-p4-w12-384_8xb4-12k_youtubevis2021.py')

# Deformable-DETR layer sub-module -> mmdet layer sub-module.
_ENC_RENAMES = {
    'linear1': 'ffn.layers.0.0',
    'linear2': 'ffn.layers.1',
    'norm1': 'norms.0',
    'norm2': 'norms.1',
}
_DEC_RENAMES = {
    'linear1': 'ffn.layers.0.0',
    'linear2': 'ffn.layers.1',
    'norm2': 'norms.0',  # after self-attention
    'norm1': 'norms.1',  # after cross-attention
    'norm3': 'norms.2',  # after the FFN
}
_MASK_HEAD_RENAMES = {
    'lay3': 'fuse_convs.0',
    'lay4': 'fuse_convs.1',
    'dcn': 'fuse_convs.2',
    'lay1': 'out_convs.0',
    'lay2': 'out_convs.1',
}
_BN_FIELDS = ('weight', 'bias', 'running_mean', 'running_var',
              'num_batches_tracked')

_RES_RE = re.compile(r'^res([2-5])\.(\d+)\.(conv[1-3]|shortcut)\.(.+)$')
_SWIN_BLOCK_RE = re.compile(
    r'^layers\.(\d+)\.blocks\.(\d+)\.(norm[12]|attn|mlp\.fc[12])\.(.+)$')
_SWIN_MERGE_RE = re.compile(
    r'^layers\.(\d+)\.downsample\.(reduction\.weight|norm\.(weight|bias))$')
# Swin block sub-module -> mmdet SwinBlock sub-module.
_SWIN_BLOCK_RENAMES = {
    'norm1': 'norm1',
    'norm2': 'norm2',
    'attn': 'attn.w_msa',
    'mlp.fc1': 'ffn.layers.0.0',
    'mlp.fc2': 'ffn.layers.1',
}
# Official concat block (x0, x1, x2, x3 = (0,0), (1,0), (0,1), (1,1)) of
# each nn.Unfold kernel position ((0,0), (0,1), (1,0), (1,1)).
_SWIN_MERGE_ORDER = [0, 2, 1, 3]
_ENC_RE = re.compile(r'^encoder\.layers\.(\d+)\.(\w+)\.(.+)$')
_DEC_RE = re.compile(r'^decoder\.layers\.(\d+)\.(\w+)\.(.+)$')


def _normalize_keys(state_dict: dict) -> Dict[str, torch.Tensor]:
    """Strip wrappers so keys start at the ``CondInst_segm`` level.

    The full IDOL meta-architecture adds one ``detr.`` in front of every
    ``CondInst_segm`` key; it is recognised by ``detr.detr.`` keys.
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        out[key] = value if isinstance(value, torch.Tensor) else \
            torch.as_tensor(value)
    if any(k.startswith('detr.detr.') for k in out):
        out = OrderedDict((k[len('detr.'):] if k.startswith('detr.') else k, v)
                          for k, v in out.items())
    return out


def _map_swin(name: str) -> Optional[str]:
    """Official Swin name -> mmdet ``SwinTransformer`` name (no prefix)."""
    if name.startswith('patch_embed.proj.'):
        return 'patch_embed.projection.' + name[len('patch_embed.proj.'):]
    if name.startswith('patch_embed.norm.'):
        return name
    m = _SWIN_BLOCK_RE.match(name)
    if m is not None:
        stage, block, module, param = m.groups()
        return (f'stages.{stage}.blocks.{block}.'
                f'{_SWIN_BLOCK_RENAMES[module]}.{param}')
    m = _SWIN_MERGE_RE.match(name)
    if m is not None:
        return f'stages.{m.group(1)}.downsample.{m.group(2)}'
    if re.match(r'^norm[1-3]\.(weight|bias)$', name):
        return name
    return None


def _reorder_patch_merging(name: str, value: torch.Tensor) -> torch.Tensor:
    """Permute a Swin ``downsample`` tensor to mmdet's Unfold order.

    The ``4 * C`` merged channels are ``block * C + c`` officially and
    ``c * 4 + position`` in mmdet; other tensors are returned unchanged.
    """
    m = _SWIN_MERGE_RE.match(name)
    if m is None:
        return value
    if value.dim() == 2:  # reduction: (2C, 4C), permute the input columns
        out_ch, in_ch = value.shape
        return value.reshape(out_ch, 4, in_ch // 4)[:, _SWIN_MERGE_ORDER, :] \
            .transpose(1, 2).reshape(out_ch, in_ch)
    in_ch = value.shape[0]  # norm over the 4C merged channels
    return value.reshape(4, in_ch // 4)[_SWIN_MERGE_ORDER, :] \
        .transpose(0, 1).reshape(in_ch)


def _map_backbone(name: str) -> Optional[str]:
    """detectron2 ResNet or official Swin name -> mmdet backbone name."""
    prefix = 'detector.backbone.'
    swin = _map_swin(name)
    if swin is not None:
        return prefix + swin
    if name == 'stem.conv1.weight':
        return prefix + 'conv1.weight'
    if name.startswith('stem.conv1.norm.'):
        field = name[len('stem.conv1.norm.'):]
        return prefix + 'bn1.' + field if field in _BN_FIELDS else None
    m = _RES_RE.match(name)
    if m is None:
        return None
    stage, block, conv, rest = m.groups()
    base = f'{prefix}layer{int(stage) - 1}.{block}.'
    if conv == 'shortcut':
        conv_name, norm_name = 'downsample.0', 'downsample.1'
    else:
        conv_name, norm_name = conv, 'bn' + conv[-1]
    if rest == 'weight':
        return base + conv_name + '.weight'
    if rest.startswith('norm.') and rest[len('norm.'):] in _BN_FIELDS:
        return base + norm_name + '.' + rest[len('norm.'):]
    return None


def _map_layer(rest: str, renames: Dict[str, str],
               decoder: bool) -> Optional[str]:
    """One transformer layer's sub-key (``<module>.<param...>``)."""
    module, _, param = rest.partition('.')
    if module in renames:
        return f'{renames[module]}.{param}'
    if module == 'cross_attn' and decoder:
        return rest
    if module == 'self_attn':
        # MSDeformAttn (encoder) keeps its names; nn.MultiheadAttention
        # (decoder) is wrapped as ``attn`` by mmcv's MultiheadAttention.
        return f'self_attn.attn.{param}' if decoder else rest
    return None


def _map_key(name: str, num_1x1_proj: int) -> Optional[str]:
    """``CondInst_segm``-level key -> mmookd key (None if not mapped)."""
    if name.startswith('detr.backbone.0.backbone.'):
        return _map_backbone(name[len('detr.backbone.0.backbone.'):])
    m = re.match(r'^detr\.input_proj\.(\d+)\.([01])\.(weight|bias)$', name)
    if m is not None:
        level, sub, param = int(m.group(1)), m.group(2), m.group(3)
        if level < num_1x1_proj:
            base = f'detector.neck.convs.{level}.'
        else:
            base = f'detector.neck.extra_convs.{level - num_1x1_proj}.'
        return base + ('conv.' if sub == '0' else 'gn.') + param
    if name == 'detr.query_embed.weight':
        return 'detector.query_embedding.weight'
    if name == 'detr.transformer.level_embed':
        return 'detector.level_embed'
    if name.startswith('detr.transformer.reference_points.'):
        return 'detector.reference_points_fc.' + name.rsplit('.', 1)[1]
    m = _ENC_RE.match(name[len('detr.transformer.'):]) \
        if name.startswith('detr.transformer.encoder.') else None
    if m is not None:
        sub = _map_layer(f'{m.group(2)}.{m.group(3)}', _ENC_RENAMES, False)
        return None if sub is None else \
            f'detector.encoder.layers.{m.group(1)}.{sub}'
    m = _DEC_RE.match(name[len('detr.transformer.'):]) \
        if name.startswith('detr.transformer.decoder.') else None
    if m is not None:
        sub = _map_layer(f'{m.group(2)}.{m.group(3)}', _DEC_RENAMES, True)
        return None if sub is None else \
            f'detector.decoder.layers.{m.group(1)}.{sub}'
    m = re.match(r'^detr\.class_embed\.(\d+)\.(weight|bias)$', name)
    if m is not None:
        return f'detector.bbox_head.cls_branches.{m.group(1)}.{m.group(2)}'
    m = re.match(r'^detr\.bbox_embed\.(\d+)\.layers\.(\d+)\.(weight|bias)$',
                 name)
    if m is not None:
        # MLP layers j -> Sequential(Linear, ReLU, Linear, ReLU, Linear) 2j
        return (f'detector.bbox_head.reg_branches.{m.group(1)}.'
                f'{2 * int(m.group(2))}.{m.group(3)}')
    if name.startswith('reid_embed_head.layers.'):
        return 'detector.bbox_head.embed_branch.' + \
            name[len('reid_embed_head.'):]
    if name.startswith('controller.layers.'):
        return 'mask_head.' + name
    m = re.match(r'^mask_head\.(\w+)\.(weight|bias)$', name)
    if m is not None and m.group(1) in _MASK_HEAD_RENAMES:
        return (f'mask_head.mask_branch.{_MASK_HEAD_RENAMES[m.group(1)]}.'
                f'{m.group(2)}')
    return None


def convert_vnext_idol(state_dict: dict,
                       unmapped: Optional[List[str]] = None) -> dict:
    """Rename an official IDOL (R50/R101/Swin) state dict to mmookd's names.

    Args:
        state_dict (dict): The official ``model`` state dict (values may be
            tensors or numpy arrays).
        unmapped (list, optional): If given, the official keys that have no
            counterpart are appended to it.

    Returns:
        dict: ``OrderedDict`` of mmookd keys to tensors. Every BN also gets
        ``num_batches_tracked = 0``, which detectron2's FrozenBN lacks.
    """
    src = _normalize_keys(state_dict)
    num_1x1_proj = sum(1 for k, v in src.items()
                       if re.match(r'^detr\.input_proj\.\d+\.0\.weight$', k)
                       and v.dim() == 4 and v.shape[-1] == 1)
    out: Dict[str, torch.Tensor] = OrderedDict()
    for name, value in src.items():
        if name.startswith('detr.transformer.decoder.bbox_embed.'):
            # The box-refinement alias of ``detr.bbox_embed``.
            orig = 'detr.' + name[len('detr.transformer.decoder.'):]
            if orig in src and torch.equal(src[orig], value):
                continue
        if re.match(r'^detr\.backbone\.0\.backbone\.norm0\.', name):
            continue  # Swin's stride-4 output norm: unused by IDOL
        new = _map_key(name, num_1x1_proj)
        if new is None:
            if unmapped is not None:
                unmapped.append(name)
            continue
        if name.startswith('detr.backbone.0.backbone.'):
            value = _reorder_patch_merging(
                name[len('detr.backbone.0.backbone.'):], value)
        out[new] = value.clone()
    for key in list(out):
        if key.endswith('.running_var'):
            nbt = key[:-len('running_var')] + 'num_batches_tracked'
            out.setdefault(nbt, torch.tensor(0, dtype=torch.long))
    return out


def is_swin(converted: dict) -> bool:
    """Whether a converted state dict holds a Swin backbone."""
    return 'detector.backbone.patch_embed.projection.weight' in converted


def compare_with_model(
        converted: dict,
        model_state: dict) -> Tuple[List[str], List[str], List[str]]:
    """Check the converted dict against a model's ``state_dict()``.

    Returns:
        tuple[list]: ``(missing, unexpected, mismatched)``: model keys not
        filled, converted keys the model lacks, and keys whose shapes differ
        (``'key: src_shape vs model_shape'``).
    """
    missing = [k for k in model_state if k not in converted]
    unexpected = [k for k in converted if k not in model_state]
    mismatched = [
        f'{k}: {tuple(converted[k].shape)} vs {tuple(v.shape)}'
        for k, v in model_state.items()
        if k in converted and converted[k].shape != v.shape
    ]
    return missing, unexpected, mismatched


def load_official_checkpoint(path: str, unsafe_load: bool = False) -> dict:
    """Load a VNext checkpoint and return its model state dict.

    ``weights_only=True`` is tried first (detectron2 ``.pth`` files are plain
    dicts of tensors and builtins). Only when that fails and the caller opted
    in is the file unpickled in full, which can execute arbitrary code.
    """
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends
        if not unsafe_load:
            raise RuntimeError(
                f'{path} cannot be loaded with weights_only=True ({err}). '
                'If you trust its origin, re-run with --unsafe-load.') from err
        print(f'WARNING: fully unpickling {path}; this can execute arbitrary '
              'code, only do it for files from a trusted source.')
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if isinstance(ckpt, dict):
        for key in ('model', 'state_dict'):
            if key in ckpt and isinstance(ckpt[key], dict):
                return ckpt[key]
    return ckpt


def _build_model_state(config: str) -> dict:
    """``state_dict()`` of the mmookd model built from ``config``."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmookd  # noqa: F401  (registers the modules)
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    return MODELS.build(cfg.model).state_dict()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official VNext IDOL checkpoint to mmookd.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output mmookd checkpoint')
    parser.add_argument(
        '--config',
        default=None,
        help='mmookd config whose model the result is checked against '
        '(default: the IDOL R-50 YouTube-VIS 2021 config, or the Swin-L one '
        'for a Swin checkpoint)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing dst')
    parser.add_argument(
        '--allow-missing',
        action='store_true',
        help='save even if some model parameters are left unfilled or '
        'have a different shape (those are left out)')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='fall back to weights_only=False for a TRUSTED file that '
        'weights_only=True cannot load')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='on an error, show the full traceback instead of one line')
    return parser.parse_args(argv)


def _report(title: str, keys: List[str]) -> None:
    if keys:
        print(f'{title} ({len(keys)}):')
        for key in keys:
            print(f'  {key}')


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit status, raises on bad input
    (``run_cli`` turns that into one ``error:`` line and status 2)."""
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'src checkpoint {args.src} not found')
    if osp.exists(args.dst) and not args.force:
        raise FileExistsError(f'dst {args.dst} exists already; pass --force '
                              'to overwrite it')
    if args.config is not None and not osp.isfile(args.config):
        # before the (large) official checkpoint is read
        raise FileNotFoundError(f'config file not found: {args.config}')
    state_dict = load_official_checkpoint(args.src, args.unsafe_load)
    unmapped: List[str] = []
    converted = convert_vnext_idol(state_dict, unmapped)
    config = args.config or (DEFAULT_SWIN_CONFIG
                             if is_swin(converted) else DEFAULT_CONFIG)
    print(f'Checking against {config}')
    model_state = _build_model_state(config)
    missing, unexpected, mismatched = compare_with_model(
        converted, model_state)
    _report('Official keys without a mmookd counterpart (dropped)', unmapped)
    _report('Converted keys the mmookd model lacks (dropped)', unexpected)
    _report('Shape mismatches', mismatched)
    _report('mmookd parameters left unfilled', missing)
    if (missing or mismatched) and not args.allow_missing:
        raise ValueError(
            f'{args.src}: conversion incomplete ({len(missing)} parameters '
            f'unfilled, {len(mismatched)} shape mismatches, listed above); '
            'nothing saved (see --allow-missing)')
    bad = {m.split(':', 1)[0] for m in mismatched}
    result = OrderedDict((k, v) for k, v in converted.items()
                         if k in model_state and k not in bad)
    torch.save(
        dict(
            meta=dict(
                source=osp.basename(args.src),
                converter='vnext_idol_to_mmookd'),
            state_dict=result), args.dst)
    print(f'Saved {len(result)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    from mmookd.utils.cli import run_cli
    sys.exit(run_cli(main))
