# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's CondInst-style dynamic mask head (docs/hyperparameters.md §4).

Three parts, all on the per-frame outputs of the Deformable-DETR transformer:

* a mask feature branch (IDOL's ``MaskHeadSmallConv``) that fuses the
  encoder memory of levels 0..2 (strides 8/16/32) top-down into an
  8-channel map at stride 8;
* a controller MLP (256 -> 256 -> 256 -> 169) that turns every query feature
  into the 169 parameters of three dynamic 1x1 convolutions;
* the dynamic convolutions themselves, run on the mask features concatenated
  with two relative-coordinate channels (in absolute pixels), followed by an
  aligned-bilinear x2 upsampling to stride 4.

The losses (sigmoid focal and dice per positive mask, both ``sum / N_pos``,
§9) are computed here as well, because only this head knows its
output stride and the target sub-sampling that matches it.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import MLP
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils.misc import aligned_bilinear, relative_coordinate_maps
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule, kaiming_init, xavier_init
from torch import Tensor, nn


class MaskBranch(BaseModule):
    """Top-down fusion of the encoder memory into the mask features.

    IDOL's ``MaskHeadSmallConv`` without extra FPN inputs (§4): a 3x3
    conv + ReLU on the coarsest map, then for every finer level: nearest
    upsampling to its size, addition of that level's memory and a 3x3 conv +
    ReLU; finally 3x3 convs ``channels -> mid_channels -> out_channels``,
    each followed by ReLU. Its output is at the stride of the finest input
    (8 for the default memory levels 0..2).

    Args:
        in_channels (int): Channels of the encoder memory. Defaults to 256.
        num_levels (int): Number of memory levels fused (finest first).
            Defaults to 3.
        mid_channels (int): Channels of the penultimate conv. Defaults to 64.
        out_channels (int): Channels of the mask features. Defaults to 8.
        init_cfg (dict, optional): Initialization config. Defaults to None
            (kaiming-uniform a=1, zero bias, as IDOL).
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_levels: int = 3,
                 mid_channels: int = 64,
                 out_channels: int = 8,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        assert num_levels >= 1
        self.num_levels = num_levels
        self.out_channels = out_channels
        # fuse_convs[0] acts on the coarsest level, the last one on the
        # finest (after the addition of its memory).
        self.fuse_convs = nn.ModuleList([
            nn.Conv2d(in_channels, in_channels, 3, padding=1)
            for _ in range(num_levels)
        ])
        self.out_convs = nn.ModuleList([
            nn.Conv2d(in_channels, mid_channels, 3, padding=1),
            nn.Conv2d(mid_channels, out_channels, 3, padding=1)
        ])

    def init_weights(self) -> None:
        """Kaiming-uniform (a=1) weights and zero biases (§4)."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kaiming_init(m, a=1, distribution='uniform', bias=0)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Fuse ``feats`` (finest first, each (B, C, h_l, w_l)).

        Returns:
            Tensor: Mask features (B, out_channels, h_0, w_0).
        """
        assert len(feats) == self.num_levels
        x = F.relu(self.fuse_convs[0](feats[-1]))
        for i, feat in enumerate(reversed(feats[:-1]), start=1):
            x = F.interpolate(x, size=feat.shape[-2:], mode='nearest')
            x = F.relu(self.fuse_convs[i](x + feat))
        for conv in self.out_convs:
            x = F.relu(conv(x))
        return x


@MODELS.register_module()
class IDOLMaskHead(BaseModule):
    """IDOL's dynamic (CondInst-style) mask head (§4, §9).

    (Not named ``DynamicMaskHead``: mmdet registers Sparse R-CNN's head
    under that name.)

    Args:
        in_channels (int): Channels of the encoder memory and of the query
            features. Defaults to 256.
        num_mask_levels (int): Encoder memory levels fused by the mask
            branch, finest first. Defaults to 3 (strides 8, 16, 32).
        mask_feat_stride (int): Stride of the finest fused level, i.e. of
            the mask features. Defaults to 8.
        mask_out_stride (int): Stride of the predicted mask logits.
            Defaults to 4 (aligned-bilinear x2 of stride 8).
        branch_mid_channels (int): Penultimate channels of the mask branch.
            Defaults to 64.
        mask_feat_channels (int): Channels of the mask features (``C``).
            Defaults to 8.
        num_dyn_layers (int): Number of dynamic 1x1 convs. Defaults to 3.
        dyn_channels (int): Hidden channels of the dynamic convs.
            Defaults to 8.
        rel_coord (bool): Concatenate the two relative-coordinate channels
            (reference point minus pixel location, in absolute pixels of the
            un-padded image, *not* normalised, §4). Defaults to True.
        controller_layers (int): Linear layers of the controller MLP.
            Defaults to 3.
        loss_mask (dict): Per-pixel mask loss; mean over the pixels of a
            mask, ``sum / N_pos`` over masks. Defaults to sigmoid focal
            (alpha 0.25, gamma 2) with weight 2.
        loss_dice (dict): Dice loss ``1 - (2 sum pq + 1) / (sum p + sum q +
            1)``, ``sum / N_pos``. Defaults to weight 5.
        target_offset (int, optional): Offset of the stride-``mask_out_stride``
            sub-sampling of the padded GT masks. Defaults to None, meaning
            ``mask_out_stride // 2`` (2 for stride 4, §9).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_mask_levels: int = 3,
                 mask_feat_stride: int = 8,
                 mask_out_stride: int = 4,
                 branch_mid_channels: int = 64,
                 mask_feat_channels: int = 8,
                 num_dyn_layers: int = 3,
                 dyn_channels: int = 8,
                 rel_coord: bool = True,
                 controller_layers: int = 3,
                 loss_mask: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=2.0),
                 loss_dice: ConfigType = dict(
                     type='DiceLoss',
                     use_sigmoid=True,
                     activate=True,
                     naive_dice=True,
                     eps=1.0,
                     loss_weight=5.0),
                 target_offset=None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        assert mask_feat_stride % mask_out_stride == 0
        assert num_dyn_layers >= 1
        self.num_mask_levels = num_mask_levels
        self.mask_feat_stride = mask_feat_stride
        self.mask_out_stride = mask_out_stride
        self.rel_coord = rel_coord
        self.target_offset = (
            mask_out_stride // 2 if target_offset is None else target_offset)

        self.mask_branch = MaskBranch(in_channels, num_mask_levels,
                                      branch_mid_channels, mask_feat_channels)
        # Parameter layout of CondInst / IDOL: all weights, then all biases.
        in_dims = [mask_feat_channels + (2 if rel_coord else 0)]
        in_dims += [dyn_channels] * (num_dyn_layers - 1)
        out_dims = [dyn_channels] * (num_dyn_layers - 1) + [1]
        self.dyn_in_dims, self.dyn_out_dims = in_dims, out_dims
        self.weight_nums = [i * o for i, o in zip(in_dims, out_dims)]
        self.bias_nums = list(out_dims)
        self.num_params = sum(self.weight_nums) + sum(self.bias_nums)
        self.controller = MLP(in_channels, in_channels, self.num_params,
                              controller_layers)
        # Pixel centres of the stride-8 mask features: 8 j + 4 (§4).
        self.prior_generator = MlvlPointGenerator([mask_feat_stride],
                                                  offset=0.5)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)

    def init_weights(self) -> None:
        """Xavier-uniform controller with zero biases (§4)."""
        super().init_weights()
        for layer in self.controller.layers:
            xavier_init(layer, distribution='uniform', bias=0)

    # ------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------
    def forward_mask_feats(
        self,
        memory: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        spatial_shapes_list: Optional[Sequence[Tuple[int,
                                                     int]]] = None) -> Tensor:
        """Mask features from the flattened encoder memory.

        Args:
            memory (Tensor): Encoder output (B, sum_l h_l w_l, C).
            spatial_shapes (Tensor): (num_levels, 2) as (h, w).
            level_start_index (Tensor): (num_levels, ).
            spatial_shapes_list (Sequence[tuple[int, int]], optional): The
                same shapes as Python ints; when given, nothing is read
                from the device (the fast inference path, issue 15).

        Returns:
            Tensor: (B, mask_feat_channels, h_0, w_0), stride
            ``mask_feat_stride`` of the padded input.
        """
        bs, _, c = memory.shape
        feats = []
        start = 0
        for lvl in range(self.num_mask_levels):
            if spatial_shapes_list is not None:
                h, w = spatial_shapes_list[lvl]
                if lvl:
                    start += int(spatial_shapes_list[lvl - 1][0] *
                                 spatial_shapes_list[lvl - 1][1])
            else:
                h, w = (int(v) for v in spatial_shapes[lvl])
                start = int(level_start_index[lvl])
            feat = memory[:, start:start + h * w]
            feats.append(feat.transpose(1, 2).reshape(bs, c, h, w))
        return self.mask_branch(feats)

    def parse_dynamic_params(self, params: Tensor) -> Tuple[List[Tensor], ...]:
        """Split (n, num_params) into per-layer grouped-conv weights/biases.

        Same layout as mmdet's ``CondInstMaskHead.parse_dynamic_params`` (and
        IDOL's), written out here because mmdet's reshapes the hidden layers
        by the *input* channel count, which is only right when
        ``mask_feat_channels == dyn_channels``.
        """
        n = params.size(0)
        splits = torch.split_with_sizes(
            params, self.weight_nums + self.bias_nums, dim=1)
        num_layers = len(self.weight_nums)
        weights, biases = [], []
        for i in range(num_layers):
            out_dim, in_dim = self.dyn_out_dims[i], self.dyn_in_dims[i]
            weights.append(splits[i].reshape(n * out_dim, in_dim, 1, 1))
            biases.append(splits[num_layers + i].reshape(n * out_dim))
        return weights, biases

    def relative_coords(self, ref_points: Tensor,
                        feat_size: Tuple[int, int]) -> Tensor:
        """Reference point minus pixel location, in absolute pixels.

        Args:
            ref_points (Tensor): (n, 2) reference points (x, y) in pixels of
                the un-padded input image.
            feat_size (tuple[int]): (h, w) of the mask features.

        Returns:
            Tensor: (n, 2, h, w), channel 0 = dx, channel 1 = dy.
        """
        locations = self.prior_generator.single_level_grid_priors(
            feat_size, 0, device=ref_points.device)
        ones = ref_points.new_ones(ref_points.size(0))
        # strides 1 and size_of_interest 1: IDOL does not normalise.
        return relative_coordinate_maps(locations, ref_points, ones, 1,
                                        feat_size)

    def forward_masks(self,
                      mask_feat: Tensor,
                      query_feats: Tensor,
                      ref_points: Tensor,
                      params: Optional[Tensor] = None) -> Tensor:
        """Mask logits of ``n`` queries of one image.

        Args:
            mask_feat (Tensor): (C, h, w) mask features of the image.
            query_feats (Tensor): (n, in_channels) decoder query features.
            ref_points (Tensor): (n, 2) input reference points of the same
                decoder layer, (x, y) in pixels of the un-padded image.
            params (Tensor, optional): (n, num_params) dynamic parameters
                computed beforehand (``controller`` of the queries);
                inference computes them for all queries at once, so that
                their values do not depend on which queries are kept
                (a matmul's rounding depends on its row count).

        Returns:
            Tensor: (n, h * r, w * r) mask logits at ``mask_out_stride``
            (``r = mask_feat_stride // mask_out_stride``).
        """
        n = query_feats.size(0)
        _, h, w = mask_feat.shape
        factor = self.mask_feat_stride // self.mask_out_stride
        if n == 0:
            # Still part of the graph (zero gradients), so that every
            # parameter is used even when a batch has no positive query.
            connected = mask_feat.sum() * 0 + self.controller(
                query_feats).sum() * 0
            return mask_feat.new_zeros((0, h * factor, w * factor)) + connected
        if params is None:
            params = self.controller(query_feats)
        x = mask_feat[None].expand(n, -1, -1, -1)
        if self.rel_coord:
            x = torch.cat([self.relative_coords(ref_points, (h, w)), x], 1)
        x = x.reshape(1, -1, h, w)
        weights, biases = self.parse_dynamic_params(params)
        for i, (weight, bias) in enumerate(zip(weights, biases)):
            x = F.conv2d(x, weight, bias=bias, groups=n)
            if i < len(weights) - 1:
                x = F.relu(x)
        # one image per query for the upsampling: the CPU kernel's result
        # for a channel depends on the channel count, per image it does not
        # (a query's mask must not depend on which queries are kept)
        x = aligned_bilinear(x.reshape(n, 1, h, w), factor)
        return x.reshape(n, h * factor, w * factor)

    # ------------------------------------------------------------------
    # targets and losses
    # ------------------------------------------------------------------
    def get_mask_targets(self, gt_masks, pad_shape: Tuple[int, int],
                         device: torch.device) -> Tensor:
        """Sub-sample padded GT masks to the prediction grid (§9).

        The GT masks are padded to the batch input shape (a multiple of 32)
        and sampled at ``(offset + s i, offset + s j)`` with ``s`` the output
        stride, so that they align exactly with the predictions.

        Args:
            gt_masks (BitmapMasks | Tensor): (M, H, W) binary masks, padded or
                not.
            pad_shape (tuple[int]): (H_pad, W_pad) of the batch input.
            device (torch.device): Target device.

        Returns:
            Tensor: (M, H_pad / s, W_pad / s) float targets.
        """
        if isinstance(gt_masks, Tensor):
            masks = gt_masks.to(device=device, dtype=torch.float32)
        else:
            masks = gt_masks.to_tensor(dtype=torch.float32, device=device)
        h_pad, w_pad = pad_shape
        masks = masks[:, :h_pad, :w_pad]
        masks = F.pad(masks,
                      (0, w_pad - masks.size(2), 0, h_pad - masks.size(1)))
        s, o = self.mask_out_stride, self.target_offset
        return masks[:, o::s, o::s]

    def loss(self, mask_preds: Tensor, mask_targets: Tensor,
             avg_factor: float) -> Tuple[Tensor, Tensor]:
        """Focal and dice losses of positive masks (§9).

        Args:
            mask_preds (Tensor): (n, h, w) logits of the positive queries.
            mask_targets (Tensor): (n, h, w) binary targets.
            avg_factor (float): ``N_pos`` of the decoder layer (local).

        Returns:
            tuple[Tensor]: ``loss_mask`` and ``loss_dice``.
        """
        n = mask_preds.size(0)
        if n == 0:
            zero = mask_preds.sum() * 0
            return zero, zero
        preds = mask_preds.flatten(1)
        targets = mask_targets.flatten(1).to(preds.dtype)
        # weight 1/HW per mask: mean over pixels, then sum / N_pos.
        pixel_mean = preds.new_full((n, ), 1.0 / preds.size(1))
        loss_mask = self.loss_mask(
            preds, targets, weight=pixel_mean, avg_factor=avg_factor)
        loss_dice = self.loss_dice(preds, targets, avg_factor=avg_factor)
        return loss_mask, loss_dice
