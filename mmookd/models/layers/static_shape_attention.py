# Copyright (c) mmookd contributors. All rights reserved.
"""Multi-scale deformable attention with static level shapes (issue 15).

mmcv's ``MultiScaleDeformableAttention`` receives the level shapes as a
device tensor and reads them on the host: an assertion on their sum (a
tensor truth test) and, on the PyTorch path, ``.item()`` for every level's
``H * W``, ``H`` and ``W``: twelve host-device synchronisations per layer,
144 per frame for a 6 + 6 layer Deformable-DETR. The level shapes are
known on the host before the network runs (they are the feature maps'
sizes), so here they travel as Python ints:

* :func:`ms_deform_attn` is a registered custom op
  (``mmookd::ms_deform_attn``, ``torch.library``) taking the shapes as an
  ``int[]``: mmcv's CUDA kernel on CUDA tensors, mmcv's PyTorch
  formulation (the same ops, so the same numbers) elsewhere, and a fake
  implementation so that ``torch.compile`` traces through it without a
  graph break;
* :class:`StaticShapeMSDeformAttn` is mmcv's module with a ``forward`` that
  uses the op when the caller passes ``spatial_shapes_list`` and is mmcv's
  own ``forward`` otherwise (training and the reference inference path are
  untouched). :func:`use_static_shape_attention` switches a built model's
  modules to it in place (same parameters, same state dict).

The op has no autograd formula: it serves inference.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttention
from torch import Tensor, nn

__all__ = [
    'ms_deform_attn', 'ms_deform_attn_pytorch', 'StaticShapeMSDeformAttn',
    'use_static_shape_attention', 'encoder_reference_points'
]

Shapes = Sequence[Tuple[int, int]]


def ms_deform_attn_pytorch(value: Tensor, shapes: Shapes,
                           sampling_locations: Tensor,
                           attention_weights: Tensor) -> Tensor:
    """mmcv's ``multi_scale_deformable_attn_pytorch`` with Python-int level
    shapes (the same ops in the same order, no host reads)."""
    bs, _, num_heads, embed_dims = value.shape
    _, num_queries, num_heads, num_levels, num_points, _ = \
        sampling_locations.shape
    value_list = value.split([h * w for h, w in shapes], dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampling_value_list = []
    for level, (h, w) in enumerate(shapes):
        value_l = value_list[level].flatten(2).transpose(1, 2).reshape(
            bs * num_heads, embed_dims, h, w)
        grid_l = sampling_grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampling_value_list.append(
            F.grid_sample(
                value_l,
                grid_l,
                mode='bilinear',
                padding_mode='zeros',
                align_corners=False))
    attention_weights = attention_weights.transpose(1, 2).reshape(
        bs * num_heads, 1, num_queries, num_levels * num_points)
    output = (torch.stack(sampling_value_list, dim=-2).flatten(-2) *
              attention_weights).sum(-1).view(bs, num_heads * embed_dims,
                                              num_queries)
    return output.transpose(1, 2).contiguous()


@torch.library.custom_op('mmookd::ms_deform_attn', mutates_args=())
def ms_deform_attn(value: Tensor, spatial_shapes: Tensor,
                   level_start_index: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor, shapes: List[int],
                   im2col_step: int) -> Tensor:
    """Multi-scale deformable attention (Deformable DETR, eq. 3).

    Args:
        value (Tensor): ``(bs, num_keys, num_heads, head_dims)``.
        spatial_shapes (Tensor): ``(num_levels, 2)`` long, on the device
            (read by the CUDA kernel only).
        level_start_index (Tensor): ``(num_levels,)`` long, on the device.
        sampling_locations (Tensor): ``(bs, num_queries, num_heads,
            num_levels, num_points, 2)`` normalised (x, y).
        attention_weights (Tensor): ``(bs, num_queries, num_heads,
            num_levels, num_points)``.
        shapes (list[int]): The level shapes flattened, ``[h0, w0, h1, ...]``.
        im2col_step (int): The CUDA kernel's batch step.

    Returns:
        Tensor: ``(bs, num_queries, num_heads * head_dims)``.
    """
    if value.is_cuda:
        from mmcv.ops.multi_scale_deform_attn import ext_module
        return ext_module.ms_deform_attn_forward(
            value,
            spatial_shapes,
            level_start_index,
            sampling_locations.type_as(value),
            attention_weights.type_as(value),
            im2col_step=im2col_step)
    pairs = list(zip(shapes[0::2], shapes[1::2]))
    return ms_deform_attn_pytorch(value, pairs, sampling_locations,
                                  attention_weights)


@ms_deform_attn.register_fake
def _ms_deform_attn_fake(value: Tensor, spatial_shapes: Tensor,
                         level_start_index: Tensor, sampling_locations: Tensor,
                         attention_weights: Tensor, shapes: List[int],
                         im2col_step: int) -> Tensor:
    bs, _, num_heads, head_dims = value.shape
    num_queries = sampling_locations.shape[1]
    return value.new_empty((bs, num_queries, num_heads * head_dims))


class StaticShapeMSDeformAttn(MultiScaleDeformableAttention):
    """mmcv's deformable attention, host-sync free when the level shapes
    are passed as ``spatial_shapes_list`` (see the module docstring)."""

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                spatial_shapes_list: Optional[Shapes] = None,
                **kwargs) -> Tensor:
        if spatial_shapes_list is None:
            return super().forward(
                query,
                key=key,
                value=value,
                identity=identity,
                query_pos=query_pos,
                key_padding_mask=key_padding_mask,
                reference_points=reference_points,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                **kwargs)
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        bs, num_value, _ = value.shape
        if sum(h * w for h, w in spatial_shapes_list) != num_value:
            raise ValueError(f'level shapes {list(spatial_shapes_list)} do '
                             f'not cover the {num_value} values')
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        sampling_offsets = self.sampling_offsets(query).view(
            bs, num_query, self.num_heads, self.num_levels, self.num_points, 2)
        attention_weights = self.attention_weights(query).view(
            bs, num_query, self.num_heads, self.num_levels * self.num_points)
        attention_weights = attention_weights.softmax(-1).view(
            bs, num_query, self.num_heads, self.num_levels, self.num_points)
        if reference_points.shape[-1] == 2:
            offset_normalizer = torch.stack(
                [spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            sampling_locations = reference_points[:, :, None, :, None, :] \
                + sampling_offsets \
                / offset_normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            sampling_locations = reference_points[:, :, None, :, None, :2] \
                + sampling_offsets / self.num_points \
                * reference_points[:, :, None, :, None, 2:] \
                * 0.5
        else:
            raise ValueError('Last dim of reference_points must be 2 or 4, '
                             f'but got {reference_points.shape[-1]}')
        flat = [int(v) for hw in spatial_shapes_list for v in hw]
        output = ms_deform_attn(value, spatial_shapes, level_start_index,
                                sampling_locations, attention_weights, flat,
                                self.im2col_step)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity


def use_static_shape_attention(model: nn.Module) -> int:
    """Switch every mmcv ``MultiScaleDeformableAttention`` of ``model`` to
    :class:`StaticShapeMSDeformAttn` in place (same parameters).

    Returns:
        int: Number of modules switched.
    """
    count = 0
    for module in model.modules():
        if type(module) is MultiScaleDeformableAttention:
            module.__class__ = StaticShapeMSDeformAttn
            count += 1
    return count


def encoder_reference_points(shapes: Shapes, valid_ratios: Tensor) -> Tensor:
    """mmdet's ``get_encoder_reference_points`` (Deformable-DETR encoder)
    with Python-int level shapes (the same arithmetic, no host reads).

    Returns:
        Tensor: ``(bs, sum(h * w), num_levels, 2)``.
    """
    device = valid_ratios.device
    points = []
    for lvl, (h, w) in enumerate(shapes):
        ref_y, ref_x = torch.meshgrid(
            torch.linspace(
                0.5, h - 0.5, h, dtype=torch.float32, device=device),
            torch.linspace(
                0.5, w - 0.5, w, dtype=torch.float32, device=device),
            indexing='ij')
        ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        points.append(torch.stack((ref_x, ref_y), -1))
    reference_points = torch.cat(points, 1)
    return reference_points[:, :, None] * valid_ratios[:, None]
