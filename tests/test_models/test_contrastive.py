# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's contrastive selection and embedding losses
(docs/hyperparameters.md §8-9), checked against hand-computed values."""
import math

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.structures import InstanceData

from mmookd.models.losses import CosineL2AuxLoss
from mmookd.models.task_modules import (
    ContrastiveSelector,
    contrastive_loss_inputs,
    pos_neg_masks,
)

REF_META = dict(img_shape=(100, 100))


def reference_frame():
    """Reference frame, 100x100, 22 queries, logits 0.

    Ref GT id 7: [0,0,40,40]; id 9: [50,50,90,90] (not in the key frame).
    q_j = [j,0,40+j,40], j = 0..19: IoU with id 7 = (40-j)/(40+j)
    (1, .951, .905, .860, .818, .778, .739, .702, .667, .633 | .600, .569,
    .538, .509, .481, .455, .429, .404, .379, .356); GIoU = IoU (same y
    range); centre (20+j, 20) is in the box, and within 7.8125 px of the
    centre (20, 20) for j <= 7 only: the cost rises with j.
    q20 = id 9's box; q21 = [60,60,100,100] (IoU 900/2300 = .391 with id 9).

    id 7: top-10 IoU sum 8.05 -> k = 8: P = q0..q7;
          top-100 (all 20) sum 12.77 -> k = 12: P' = q0..q11.
    id 9: top-10 and top-100 sums 1.39 -> k = 1: q20 in both.
    No query is claimed twice (q0..q19 cost > 100 for id 9, q20/q21 do
    not touch id 7's box).
    """
    boxes = [[j, 0, 40 + j, 40] for j in range(20)]
    boxes += [[50, 50, 90, 90], [60, 60, 100, 100]]
    preds = InstanceData(
        scores=torch.zeros(22, 3), bboxes=torch.tensor(boxes).float())
    gts = InstanceData(
        labels=torch.tensor([0, 2]),
        bboxes=torch.tensor([[0, 0, 40, 40], [50, 50, 90, 90]]).float(),
        instances_ids=torch.tensor([7, 9]))
    return preds, gts


def test_selector_positives_negatives_ignored():
    preds, ref_gts = reference_frame()
    # Key GT ids 5 (absent from the reference: no item) and 7.
    key_gts = InstanceData(instances_ids=torch.tensor([5, 7]))
    key_matched = torch.tensor([3, 11])
    selector = TASK_UTILS.build(dict(type='ContrastiveSelector'))
    items = selector.select(key_gts, key_matched, preds, ref_gts, REF_META)
    assert len(items) == 1
    assert items.anchor_inds.tolist() == [11]  # key query matched to id 7
    assert items.instances_ids.tolist() == [7]
    assert items.key_gt_inds.tolist() == [1]
    assert items.ref_gt_inds.tolist() == [0]
    pos = items.pos_masks[0].nonzero().squeeze(1).tolist()
    neg = items.neg_masks[0].nonzero().squeeze(1).tolist()
    assert pos == list(range(8))
    # Not in P' = q0..q11: q12..q19, and id 9's q20, and background q21.
    assert neg == list(range(12, 22))
    ignored = ~(items.pos_masks[0] | items.neg_masks[0])
    assert ignored.nonzero().squeeze(1).tolist() == [8, 9, 10, 11]


def test_selector_topk_arguments():
    preds, ref_gts = reference_frame()
    key_gts = InstanceData(instances_ids=torch.tensor([9, 7]))
    # pos_topk 3: id 7 sum 1 + .951 + .905 = 2.86 -> k = 2 (q0, q1);
    # neg_topk 10 -> k = 8 (q0..q7).
    selector = ContrastiveSelector(pos_topk=3, neg_topk=10)
    items = selector.select(key_gts, torch.tensor([0, 1]), preds, ref_gts,
                            REF_META)
    assert items.instances_ids.tolist() == [9, 7]
    assert items.ref_gt_inds.tolist() == [1, 0]
    assert items.pos_masks[0].nonzero().squeeze(1).tolist() == [20]
    assert items.neg_masks[0].sum() == 21
    assert items.pos_masks[1].nonzero().squeeze(1).tolist() == [0, 1]
    assert items.neg_masks[1].nonzero().squeeze(1).tolist() == list(
        range(8, 22))


def test_selector_no_item_cases():
    preds, ref_gts = reference_frame()
    selector = ContrastiveSelector()
    # Key instance without a matched query (assigner returned -1).
    items = selector.select(
        InstanceData(instances_ids=torch.tensor([7])), torch.tensor([-1]),
        preds, ref_gts, REF_META)
    assert len(items) == 0
    # Reference frame without instances.
    items = selector.select(
        InstanceData(instances_ids=torch.tensor([7])), torch.tensor([2]),
        preds, ref_gts[torch.zeros(2, dtype=torch.bool)], REF_META)
    assert len(items) == 0
    assert items.pos_masks.shape == (0, 22)


def test_pos_never_negative():
    # A query (q1) in P_0 but resolved to GT1 in the wider matching: the
    # official rule (neg = not in P') would make it a negative too.
    pos_matching = torch.tensor([[1, 0], [1, 0], [0, 1]]).bool()
    wide_matching = torch.tensor([[1, 0], [0, 1], [0, 1]]).bool()
    masks = pos_neg_masks(pos_matching, wide_matching, torch.tensor([0]))
    assert masks['pos_masks'].long().tolist() == [[1, 1, 0]]
    assert masks['neg_masks'].long().tolist() == [[0, 0, 1]]


def hand_items():
    """Two images, 5 reference queries each, of varied sizes:
    image 0: item a (P {0, 1}, N {2, 3}, ignored 4), item b (P {}, N all);
    image 1: item c (P {4}, N {0, 1, 2}, ignored 3)."""

    def item(anchors, pos, neg):
        return InstanceData(
            anchor_inds=torch.tensor(anchors),
            pos_masks=torch.tensor(pos).bool(),
            neg_masks=torch.tensor(neg).bool())

    img0 = item([1, 0], [[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
                [[0, 0, 1, 1, 0], [1, 1, 1, 1, 1]])
    img1 = item([2], [[0, 0, 0, 0, 1]], [[1, 1, 1, 0, 0]])
    return [img0, img1]


def closed_form(key, ref, anchors, pos, neg):
    """§9: L = log(1 + sum_{v+} sum_{v-} exp(v-.k - v+.k)), per item,
    in float64 with explicit loops."""
    losses = []
    for a, p, n in zip(anchors, pos, neg):
        k = key[a].double()
        total = 0.
        for i in p:
            for j in n:
                total = total + torch.exp(ref[j].double() @ k -
                                          ref[i].double() @ k)
        losses.append(torch.log(1 + torch.as_tensor(total)))
    return torch.stack(losses)


def test_multipos_loss_equals_closed_form_and_gradient():
    torch.manual_seed(0)
    key = [torch.randn(3, 4, requires_grad=True) for _ in range(2)]
    ref = [torch.randn(5, 4) for _ in range(2)]
    inputs = contrastive_loss_inputs(hand_items(), key, ref)
    # Rows: a = [+0, +1, -2, -3], b = [-0..-4], c = [+4, -0, -1, -2, pad].
    assert inputs['labels'].tolist() == [[1, 1, 0, 0, 0], [0, 0, 0, 0, 0],
                                         [1, 0, 0, 0, 0]]
    assert inputs['logits'][2, 4] == torch.finfo(torch.float32).min
    loss_cfg = dict(type='MultiPosCrossEntropyLoss', loss_weight=1.0)
    loss = MODELS.build(loss_cfg)(inputs['logits'], inputs['labels'])

    per_item = torch.cat([
        closed_form(key[0], ref[0], [1, 0], [[0, 1], []],
                    [[2, 3], [0, 1, 2, 3, 4]]),
        closed_form(key[1], ref[1], [2], [[4]], [[0, 1, 2]])
    ])
    assert per_item[1] == 0  # no positive: log(1 + 0)
    torch.testing.assert_close(
        loss.double(), per_item.mean(), rtol=1e-5, atol=1e-6)

    # Gradient w.r.t. the anchor of item a (key[0][1]), analytic:
    # dL_a/dk = sum e_ij (v_j - v_i) / (1 + sum e_ij), e_ij = exp(v_j.k -
    # v_i.k); the loss is a mean over 3 items.
    loss.backward()
    k, v = key[0][1].detach().double(), ref[0].double()
    e = {
        (i, j): torch.exp(v[j] @ k - v[i] @ k)
        for i in (0, 1)
        for j in (2, 3)
    }
    grad = sum(w * (v[j] - v[i]) for (i, j), w in e.items())
    grad = grad / (1 + sum(e.values())) / 3
    torch.testing.assert_close(
        key[0].grad[1].double(), grad, rtol=1e-4, atol=1e-6)
    # Item b has no positive and item c's anchor lives in image 1.
    assert key[0].grad[0].abs().max() == 0
    assert key[0].grad[2:].abs().max() == 0


def test_multipos_loss_gradcheck_float64():
    torch.manual_seed(1)
    ref = [torch.randn(5, 3, dtype=torch.float64) for _ in range(2)]
    loss_fn = MODELS.build(dict(type='MultiPosCrossEntropyLoss'))

    def fn(key0, key1):
        inputs = contrastive_loss_inputs(hand_items(), [key0, key1], ref)
        return loss_fn(inputs['logits'], inputs['labels'])

    keys = [
        torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        for _ in range(2)
    ]
    assert torch.autograd.gradcheck(fn, keys)


def test_aux_loss_inputs_from_selection():
    torch.manual_seed(0)
    key = torch.randn(2, 3, 4)
    ref = torch.randn(2, 5, 4)
    inputs = contrastive_loss_inputs(hand_items(), key, ref)
    assert inputs['ref_labels'].tolist() == [[1, 1, 0, 0, -1], [0, 0, 0, 0, 0],
                                             [0, 0, 0, -1, 1]]
    torch.testing.assert_close(inputs['anchor_embeds'],
                               torch.stack([key[0, 1], key[0, 0], key[1, 2]]))
    torch.testing.assert_close(inputs['ref_embeds'][2], ref[1])
    loss = CosineL2AuxLoss()(inputs['anchor_embeds'], inputs['ref_embeds'],
                             inputs['ref_labels'])
    assert loss.shape == () and torch.isfinite(loss)


def test_no_items():
    inputs = contrastive_loss_inputs([
        InstanceData(
            anchor_inds=torch.zeros(0, dtype=torch.long),
            pos_masks=torch.zeros(0, 5, dtype=torch.bool),
            neg_masks=torch.zeros(0, 5, dtype=torch.bool))
    ], torch.randn(1, 3, 4), torch.randn(1, 5, 4))
    assert inputs['labels'].shape[0] == 0
    anchor = torch.randn(0, 4, requires_grad=True)
    loss = CosineL2AuxLoss()(anchor, inputs['ref_embeds'],
                             inputs['ref_labels'])
    assert loss.item() == 0
    loss.backward()


def aux_hand_case():
    """Item 0: k = [1, 0]; positive [1, 1] (cos 1/sqrt2); negatives [0, 1]
    (cos 0), [-1, 0] (cos -1); ignored [1, 0] (cos 1, would add 1).
    |N| = 2 <= 10 |P|: all negatives used, no randomness.
    loss_0 = ((1/sqrt2 - 1)^2 + 0^2 + (-1)^2) / 3 = 0.361929.
    Item 1: k = [0, 1], no positive, 12 negatives all [1, 1] (cos^2 = 1/2):
    10 sampled, loss_1 = 0.5 whichever are drawn."""
    anchor = torch.tensor([[1., 0.], [0., 1.]], requires_grad=True)
    ref = torch.zeros(2, 12, 2)
    ref[0, :4] = torch.tensor([[1., 1.], [0., 1.], [-1., 0.], [1., 0.]])
    ref[1] = 1.
    labels = torch.full((2, 12), -1)
    labels[0, :4] = torch.tensor([1, 0, 0, -1])
    labels[1] = 0
    return anchor, ref, labels


def test_aux_loss_value_and_gradient():
    anchor, ref, labels = aux_hand_case()
    loss_fn = MODELS.build(dict(type='CosineL2AuxLoss', loss_weight=3.0))
    per_item = loss_fn(anchor, ref, labels, reduction_override='none')
    loss_0 = ((1 / math.sqrt(2) - 1)**2 + 0 + 1) / 3
    torch.testing.assert_close(per_item, 3 * torch.tensor([loss_0, 0.5]))
    loss = loss_fn(anchor, ref, labels)
    torch.testing.assert_close(loss, torch.tensor(3 * (loss_0 + 0.5) / 2))
    loss.backward()
    # dcos(v, k)/dk = v_hat - cos k_hat for |k| = 1: positive -> [0, 1/sqrt2],
    # [0, 1] -> [0, 1], [-1, 0] -> [0, 0]. dL_0/dk = 2/3 (1/sqrt2 - 1)
    # [0, 1/sqrt2] + 2/3 * 0 * [0, 1] = [0, 1/3 - sqrt2/3].
    expected = torch.tensor([0., 1 / 3 - math.sqrt(2) / 3]) * 3 / 2
    torch.testing.assert_close(anchor.grad[0], expected)


def test_aux_loss_no_clamp_or_margin():
    # cos = -1 for a positive: error (-1 - 1)^2 = 4, which a [0, 1] clamp
    # (mmdet L2Loss) would turn into 1.
    loss = CosineL2AuxLoss()(torch.tensor([[1., 0.]]),
                             torch.tensor([[[-1., 0.]]]), torch.tensor([[1]]))
    assert loss.item() == pytest.approx(4.)


def test_aux_sampling_bound_and_seed():
    loss_fn = CosineL2AuxLoss()
    labels = torch.full((4, 60), -1)
    labels[0, :3], labels[0, 3:53] = 1, 0  # |P| 3, |N| 50 -> 30 negatives
    labels[1, :4] = 0  # |P| 0, |N| 4 -> all 4
    labels[2, :50] = 0  # |P| 0, |N| 50 -> 10
    labels[3, :2], labels[3, 2:12] = 1, 0  # |N| 10 <= 20 -> all 10
    torch.manual_seed(0)
    used = loss_fn.sample(labels)
    assert (used & (labels == -1)).sum() == 0
    assert (used & (labels == 1)).sum(1).tolist() == [3, 0, 0, 2]
    assert (used & (labels == 0)).sum(1).tolist() == [30, 4, 10, 10]
    torch.manual_seed(0)
    assert torch.equal(loss_fn.sample(labels), used)
    draws = [loss_fn.sample(labels)[0] for _ in range(3)]
    assert not all(torch.equal(d, used[0]) for d in draws)
    # Every negative is drawn sometimes: the subset is not a fixed prefix.
    hits = sum(loss_fn.sample(labels)[2].long() for _ in range(50))
    assert (hits[:50] > 0).all()
