# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's contrastive positives / negatives on the reference frame.

docs/hyperparameters.md §8: for every key-frame instance that is also
present in the reference frame, the anchor is the key query matched to it
(§7 step 5), the positives are the reference queries the dynamic-k
procedure assigns to it with ``candidate_topk=10`` and the negatives are
the reference queries it does *not* get with the more permissive
``candidate_topk=100``; the queries in between are ignored.
:func:`contrastive_loss_inputs` turns the selection and the embeddings into
the inputs of mmdet's ``MultiPosCrossEntropyLoss`` (IDOL's main embedding
loss, §9) and of :class:`~mmookd.models.losses.CosineL2AuxLoss`.
"""
from typing import Dict, Optional, Sequence, Union

import torch
from mmdet.registry import TASK_UTILS
from mmengine import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from .dynamic_k_assigner import dynamic_k_matching


def pos_neg_masks(pos_matching: Tensor, wide_matching: Tensor,
                  gt_inds: Tensor) -> Dict[str, Tensor]:
    """Positive and negative query masks of some GTs (§8).

    ``P_i`` = queries of GT ``i`` in ``pos_matching``; negatives = queries
    in neither ``P'_i`` (``wide_matching``) nor ``P_i``; the rest is
    ignored. Official IDOL takes the negatives as the complement of
    ``P'_i`` alone; since the two matchings resolve conflicts separately a
    query can (rarely) be in ``P_i`` but not in ``P'_i`` and would then be
    both a positive and a negative. We keep it a positive only.

    Args:
        pos_matching (Tensor): (N, M) bool, dynamic-k with k from top-10.
        wide_matching (Tensor): (N, M) bool, dynamic-k from top-100.
        gt_inds (Tensor): (n,) indices of the GTs (columns) to select.

    Returns:
        dict[str, Tensor]: ``pos_masks`` and ``neg_masks``, (n, N) bool.
    """
    pos = pos_matching[:, gt_inds].t()
    neg = ~(wide_matching[:, gt_inds].t() | pos)
    return dict(pos_masks=pos, neg_masks=neg)


@TASK_UTILS.register_module()
class ContrastiveSelector:
    """Select IDOL's contrastive items for a key/reference pair (§8).

    Uses the costs of a :class:`DynamicKAssigner` (IDOL: the same focal +
    GIoU + centre-prior cost as the key-frame assignment) on the reference
    frame's last-layer predictions, computed once and matched twice, with
    ``pos_topk`` and ``neg_topk``. Both matchings see the same, unmodified
    cost (:func:`dynamic_k_matching` does not write to it); official IDOL
    passes one cost tensor to both calls, so the penalties that the first
    call's fallback loop adds in place (only when a GT lost all its
    queries) leak into the second.

    Args:
        assigner (dict): Config of the :class:`DynamicKAssigner` whose
            costs are used. Defaults to ``dict(type='DynamicKAssigner')``.
        pos_topk (int): ``candidate_topk`` of the positive set. Defaults
            to 10.
        neg_topk (int): ``candidate_topk`` of the set whose complement is
            the negative set. Defaults to 100. Both are clipped to the
            number of queries.
    """

    def __init__(self,
                 assigner: Union[dict,
                                 ConfigDict] = dict(type='DynamicKAssigner'),
                 pos_topk: int = 10,
                 neg_topk: int = 100) -> None:
        self.assigner = TASK_UTILS.build(assigner)
        assert hasattr(self.assigner, 'get_cost'), \
            'the assigner must provide get_cost() (e.g. DynamicKAssigner)'
        self.pos_topk = pos_topk
        self.neg_topk = neg_topk

    @torch.no_grad()
    def select(self, key_gt_instances: InstanceData, key_matched_query: Tensor,
               ref_pred_instances: InstanceData,
               ref_gt_instances: InstanceData,
               ref_img_meta: dict) -> InstanceData:
        """Contrastive items of one key/reference pair.

        Args:
            key_gt_instances (:obj:`InstanceData`): Key-frame GT with
                ``instances_ids`` (M_k,).
            key_matched_query (Tensor): (M_k,) key query matched to each key
                GT (the assigner's ``'matched_query_per_gt'``, -1 = none).
            ref_pred_instances (:obj:`InstanceData`): Reference frame's
                last-layer predictions: ``scores`` class logits (N, K),
                ``bboxes`` absolute xyxy (N, 4).
            ref_gt_instances (:obj:`InstanceData`): Reference-frame GT,
                only instances valid (present) in the reference: ``labels``,
                ``bboxes`` (absolute xyxy) and ``instances_ids`` (M_r,).
            ref_img_meta (dict): Reference meta with ``img_shape`` (h, w).

        Returns:
            :obj:`InstanceData`: one item per key instance present in the
            reference (and with a matched key query), in key-GT order:

            - ``anchor_inds`` (n,): key query of the anchor embedding.
            - ``pos_masks`` / ``neg_masks`` (n, N) bool: reference queries
              that are positives / negatives (neither = ignored).
            - ``instances_ids``, ``key_gt_inds``, ``ref_gt_inds`` (n,).
        """
        num_queries = len(ref_pred_instances)
        device = key_matched_query.device
        key_ids = key_gt_instances.instances_ids.to(device)
        ref_ids = ref_gt_instances.instances_ids.to(device)
        same = key_ids[:, None] == ref_ids[None, :]
        valid = same.any(1) & (key_matched_query >= 0)
        key_gt_inds = valid.nonzero().squeeze(1)
        n = key_gt_inds.numel()
        # Instance ids are unique per frame: one True per selected row.
        ref_gt_inds = same[key_gt_inds].nonzero()[:, 1]
        if n > 0 and num_queries > 0:
            cost, ious = self.assigner.get_cost(ref_pred_instances,
                                                ref_gt_instances, ref_img_meta)
            masks = pos_neg_masks(
                dynamic_k_matching(cost, ious, self.pos_topk),
                dynamic_k_matching(cost, ious, self.neg_topk), ref_gt_inds)
        else:
            empty = torch.zeros((n, num_queries),
                                dtype=torch.bool,
                                device=device)
            masks = dict(pos_masks=empty, neg_masks=~empty)
        return InstanceData(
            anchor_inds=key_matched_query[key_gt_inds],
            instances_ids=key_ids[key_gt_inds],
            key_gt_inds=key_gt_inds,
            ref_gt_inds=ref_gt_inds,
            **masks)


def contrastive_loss_inputs(
        items: Sequence[InstanceData],
        key_embeds: Union[Tensor, Sequence[Tensor]],
        ref_embeds: Union[Tensor, Sequence[Tensor]],
        pad_value: Optional[float] = None) -> Dict[str, Tensor]:
    """Loss inputs of IDOL's embedding losses for a batch (§9).

    Multi-positive loss: per item ``i`` with anchor ``k``, positives ``v+``
    and negatives ``v-`` (raw embeddings, dot products, no temperature)
    ``L_i = log(1 + sum_{v+} sum_{v-} exp(v-.k - v+.k))``, averaged over the
    items of the batch. This is mmdet's ``MultiPosCrossEntropyLoss``
    (``reduction='mean'``) on ``logits`` / ``labels`` below: row ``i`` holds
    the positive then the negative dot products of item ``i`` (label 1 /
    0); ignored queries are dropped. Rows are padded to the longest item
    with label 0 and the most negative finite float, whose terms are
    exactly 0 in that loss (-inf or NaN would poison it). With no items the
    tensors are empty and that loss would be NaN: the caller must handle
    ``len(labels) == 0`` (e.g. ``0 * embeds.sum()``).

    Args:
        items (Sequence[:obj:`InstanceData`]): Per image, the output of
            :meth:`ContrastiveSelector.select`.
        key_embeds (Tensor | Sequence[Tensor]): Per image, key-frame query
            embeddings (N_k, C), e.g. a (B, N_k, C) tensor.
        ref_embeds (Tensor | Sequence[Tensor]): Per image, reference-frame
            query embeddings (N, C).
        pad_value (float, optional): Padding logit. Defaults to the most
            negative finite value of the logits' dtype.

    Returns:
        dict[str, Tensor]: over all n items of the batch

        - ``logits`` (n, L), fp32 or wider, and ``labels`` (n, L) long:
          for
          ``MultiPosCrossEntropyLoss``.
        - ``anchor_embeds`` (n, C), ``ref_embeds`` (n, N, C) and
          ``ref_labels`` (n, N) long, 1 positive / 0 negative / -1 ignored:
          for ``CosineL2AuxLoss``.
    """
    assert len(items) == len(key_embeds) == len(ref_embeds)
    logits, labels, kept, anchors, refs, ref_labels = [], [], [], [], [], []
    for item, key_emb, ref_emb in zip(items, key_embeds, ref_embeds):
        if len(item) == 0:
            continue
        pos, neg = item.pos_masks, item.neg_masks
        anchor = key_emb[item.anchor_inds]
        # At least fp32: raw 256-d dot products can overflow fp16.
        dtype = torch.promote_types(anchor.dtype, torch.float32)
        dots = anchor.to(dtype) @ ref_emb.to(dtype).t()
        pad = torch.finfo(dtype).min if pad_value is None else pad_value
        # Stable sort: positives, then negatives, then ignored (-> padding).
        perm = (neg.long() + 2 * (~pos & ~neg).long()).argsort(
            dim=1, stable=True)
        keep = (pos | neg).gather(1, perm)
        logits.append(
            torch.where(keep, dots.gather(1, perm), dots.new_tensor(pad)))
        labels.append(pos.gather(1, perm).long())
        kept.append(keep.sum(1))
        anchors.append(anchor)
        refs.append(ref_emb[None].expand(len(item), -1, -1))
        ref_labels.append(pos.long() - (~pos & ~neg).long())
    if not logits:
        ref_emb = ref_embeds[0]
        return dict(
            logits=ref_emb.new_zeros((0, 0), dtype=torch.float32),
            labels=ref_emb.new_zeros((0, 0), dtype=torch.long),
            anchor_embeds=ref_emb.new_zeros((0, ref_emb.size(-1))),
            ref_embeds=ref_emb.new_zeros((0, ) + tuple(ref_emb.shape)),
            ref_labels=ref_emb.new_zeros((0, ref_emb.size(0)),
                                         dtype=torch.long))
    assert len({x.size(1) for x in ref_labels}) == 1, \
        'all reference frames must have the same number of queries'
    # Drop the columns that are padding in every row.
    length = max(int(torch.cat(kept).max()), 1)
    return dict(
        logits=torch.cat(logits)[:, :length],
        labels=torch.cat(labels)[:, :length],
        anchor_embeds=torch.cat(anchors),
        ref_embeds=torch.cat(refs),
        ref_labels=torch.cat(ref_labels))
