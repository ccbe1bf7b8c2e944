# Copyright (c) mmookd contributors. All rights reserved.
"""DynamicKAssigner / dynamic_k_matching (docs/hyperparameters.md §7), on cases
computed by hand in the comments."""
import math

import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from mmookd.models.task_modules import DynamicKAssigner, dynamic_k_matching

IMG_META = dict(img_shape=(100, 100))


def focal_cost(logit: float) -> float:
    """§7 focal class cost at one logit (alpha 0.25, gamma 2)."""
    p = 1 / (1 + math.exp(-logit))
    return (0.25 * (1 - p)**2 * -math.log(p + 1e-8) -
            0.75 * p**2 * -math.log(1 - p + 1e-8))


C0 = focal_cost(0.)  # -0.086643
C_NEG5 = focal_cost(-5.)  # 1.234980


def hand_case():
    """100x100 image, 2 GTs, 6 queries (all boxes share y in [0, 40] where
    they overlap the GTs, so the enclosing box is the union and GIoU = IoU).

    GT0 [0,0,40,40] label 0, centre (20,20); GT1 [20,0,60,40] label 1,
    centre (40,20). Centre radius 2.5/32 * 100 = 7.8125 px.

    query  box            centre   IoU GT0  IoU GT1  in box&centre GT0/GT1
    q0     [0,0,40,40]    (20,20)  1        1/3      yes / no (20 > 20 no)
    q1     [20,0,60,40]   (40,20)  1/3      1        no / yes
    q2     [10,0,50,40]   (30,20)  0.6      0.6      no / no (10 px away)
    q3     [5,0,45,40]    (25,20)  7/9      5/11     yes / no (15 px)
    q4     [30,30,90,90]  (60,60)  1/51     3/49     not a candidate
    q5     [80,80,100,100] (90,90) 0        0        not a candidate
    q4 GIoU: GT0 1/51 - 3000/8100 = -0.350763; GT1 3/49 - 1400/6300
    = -0.161000. q5 GIoU: GT0 -8000/10000 = -0.8; GT1 -6000/8000 = -0.75.

    Logits are 0 (focal cost C0 = -0.086643) except q2's class 1: -5
    (C_NEG5 = 1.234980), which makes q2 expensive for GT1.
    """
    boxes = torch.tensor([[0, 0, 40, 40], [20, 0, 60, 40], [10, 0, 50, 40],
                          [5, 0, 45, 40], [30, 30, 90, 90], [80, 80, 100,
                                                             100]]).float()
    logits = torch.zeros(6, 2)
    logits[2, 1] = -5.
    preds = InstanceData(scores=logits, bboxes=boxes)
    gts = InstanceData(
        labels=torch.tensor([0, 1]),
        bboxes=torch.tensor([[0, 0, 40, 40], [20, 0, 60, 40]]).float())
    return preds, gts


def test_cost_matrix_by_hand():
    preds, gts = hand_case()
    cost, ious = DynamicKAssigner().get_cost(preds, gts, IMG_META)
    # C = focal - 3 * GIoU + 100 [not in box & centre] + 1e4 [no candidate]
    expected = torch.tensor([
        [C0 - 3, C0 - 1 + 100],
        [C0 - 1 + 100, C0 - 3],
        [C0 - 1.8 + 100, C_NEG5 - 1.8 + 100],
        [C0 - 7 / 3, C0 - 15 / 11 + 100],
        [C0 + 3 * 0.350763 + 10100, C0 + 3 * 0.161000 + 10100],
        [C0 + 3 * 0.8 + 10100, C0 + 3 * 0.75 + 10100],
    ])
    torch.testing.assert_close(cost, expected, atol=1e-4, rtol=0)
    expected_ious = torch.tensor([[1, 1 / 3], [1 / 3, 1], [0.6, 0.6],
                                  [7 / 9, 5 / 11], [1 / 51, 3 / 49], [0, 0]])
    torch.testing.assert_close(ious, expected_ious, atol=1e-5, rtol=0)


def test_assign_hand_case_with_conflict():
    preds, gts = hand_case()
    assigner = TASK_UTILS.build(dict(type='DynamicKAssigner'))
    result = assigner.assign(preds, gts, img_meta=IMG_META)
    # k: GT0 int(1 + 1/3 + 0.6 + 7/9 + 1/51) = int(2.73) = 2;
    #    GT1 int(1/3 + 1 + 0.6 + 5/11 + 3/49) = int(2.45) = 2.
    # GT0 takes its 2 cheapest: q0 (-3.087), q3 (-2.420).
    # GT1 takes q1 (-3.087), q3 (98.550) (q0 98.913, q2 99.435).
    # q3 is claimed twice; its cheaper GT is GT0 (-2.420 < 98.550).
    assert result.gt_inds.tolist() == [1, 2, 0, 1, 0, 0]
    assert result.labels.tolist() == [0, 1, -1, 0, -1, -1]
    assert result.num_gts == 2
    torch.testing.assert_close(result.max_overlaps,
                               torch.tensor([1, 1, 0, 7 / 9, 0, 0]))
    # Lowest-cost assigned query: GT0 q0 (-3.087 < -2.420), GT1 q1.
    matched = result.get_extra_property('matched_query_per_gt')
    assert matched.tolist() == [0, 1]


def test_class_cost_matters():
    # With q2's class-1 logit at 0 its cost for GT1 is C0 - 1.8 + 100 =
    # 98.113 < q3's 98.550, so GT1 takes q2 and there is no conflict.
    preds, gts = hand_case()
    preds.scores[2, 1] = 0.
    result = DynamicKAssigner().assign(preds, gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [1, 2, 2, 1, 0, 0]


def test_candidate_topk_effect():
    preds, gts = hand_case()
    # top-1 IoU sums are 1.0 for both GTs -> k = 1: q3 stays background.
    result = DynamicKAssigner(candidate_topk=1).assign(
        preds, gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [1, 2, 0, 0, 0, 0]
    # top-2 sums: GT0 1 + 7/9 = 1.78 -> 1 as well; top-3: 2.38 -> 2.
    result = DynamicKAssigner(candidate_topk=2).assign(
        preds, gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [1, 2, 0, 0, 0, 0]
    result = DynamicKAssigner().assign(
        preds, gts, img_meta=IMG_META, candidate_topk=3)
    assert result.gt_inds.tolist() == [1, 2, 0, 1, 0, 0]


def test_no_gt_all_background():
    preds, _ = hand_case()
    gts = InstanceData(
        labels=torch.zeros(0, dtype=torch.long), bboxes=torch.zeros(0, 4))
    result = DynamicKAssigner().assign(preds, gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [0] * 6
    assert result.labels.tolist() == [-1] * 6
    assert result.get_extra_property('matched_query_per_gt').shape == (0, )


def test_fewer_queries_than_gts():
    # One query = GT0's box: cost GT0 -3.087, GT1 98.913 (table above); both
    # GTs have k = 1 and claim it; it goes to GT0. No unused query is left,
    # so GT1 ends without a query (matched -1) and the loop stops.
    preds, gts = hand_case()
    result = DynamicKAssigner().assign(preds[:1], gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [1]
    assert result.get_extra_property('matched_query_per_gt').tolist() == [
        0, -1
    ]


def test_assign_fallback_and_matched_query_is_assigned():
    # Hand case + GT2 = GT0's box with label 1; q0 logits [2, 0], q3 [1, 0]
    # (focal cost at logit 2: -1.237108, at 1: -0.520737).
    # GT0: q0 -1.237 - 3 = -4.237, q3 -0.521 - 7/3 = -2.854 (k = 2).
    # GT1 (k = 2): q1 -3.087, q3 C0 - 15/11 + 100 = 98.550.
    # GT2 (same IoUs as GT0, k = 2): q0 C0 - 3 = -3.087, q3 C0 - 7/3
    # = -2.420. q0 (GT0, GT2) and q3 (GT0, GT1, GT2) both go to GT0, so GT2
    # has no query. Fallback: GT2's cheapest unused query is q2
    # (C_NEG5 - 1.8 + 100 = 99.435; q4, q5 > 10000).
    # GT2's matched query is q2 (its only one), not its overall cheapest q0.
    preds, gts = hand_case()
    preds.scores[0, 0] = 2.
    preds.scores[3, 0] = 1.
    assert focal_cost(2.) == pytest.approx(-1.237108, abs=1e-6)
    assert focal_cost(1.) == pytest.approx(-0.520737, abs=1e-6)
    gts = InstanceData(
        labels=torch.tensor([0, 1, 1]),
        bboxes=torch.cat([gts.bboxes, gts.bboxes[:1]]))
    result = DynamicKAssigner().assign(preds, gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [1, 2, 3, 1, 0, 0]
    assert result.labels.tolist() == [0, 1, 1, 0, -1, -1]
    assert result.get_extra_property('matched_query_per_gt').tolist() == [
        0, 1, 2
    ]


def test_fallback_loop_gt_without_initial_query():
    # k = 1 for both GTs (IoU sums 0.4). Both claim q0 (their cheapest);
    # q0's min-cost GT is GT0 (1 < 2), so GT1 has no query. The fallback
    # gives GT1 its cheapest unused query: q1 (4 < 7 < 9).
    cost = torch.tensor([[1., 2.], [5., 4.], [9., 7.], [8., 9.]])
    ious = torch.full((4, 2), 0.1)
    matching = dynamic_k_matching(cost, ious, candidate_topk=10)
    assert matching.long().tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]


def test_fallback_fewer_queries_than_gts():
    # GT0, GT1, GT2 all claim q0 -> GT0. Round 1: GT1 and GT2 both take
    # the only unused q1; its min-cost GT is GT1 (4 < 5 < 6). Every query
    # is used now, so GT2 keeps no query.
    cost = torch.tensor([[1., 2., 3.], [5., 4., 6.]])
    matching = dynamic_k_matching(cost, torch.zeros(2, 3), 10)
    assert matching.long().tolist() == [[1, 0, 0], [0, 1, 0]]


def official_stale_matching(cost, ious, candidate_topk):
    """The official fallback loop, with the claim count computed once
    before the loop (the quirk), to show what it returns."""
    matching = torch.zeros_like(cost)
    topk_ious, _ = torch.topk(ious, candidate_topk, dim=0)
    for j, k in enumerate(topk_ious.sum(0).int().clamp(min=1).tolist()):
        matching[torch.topk(cost[:, j], k, largest=False)[1], j] = 1
    count = matching.sum(1)  # computed once: stale inside the loop
    if (count > 1).any():
        best = cost[count > 1].argmin(1)
        matching[count > 1] = 0
        matching[count > 1, best] = 1
    cost = cost.clone()
    while (matching.sum(0) == 0).any():
        cost[matching.sum(1) > 0] += 1e5
        for j in (matching.sum(0) == 0).nonzero().squeeze(1):
            matching[cost[:, j].argmin(), j] = 1
        if (count > 1).any():
            best = cost[count > 1].argmin(1)
            matching[count > 1] = 0
            matching[count > 1, best] = 1
    # Official: GT of a positive query = first max of its row.
    pos = matching.sum(1) > 0
    gt_of_query = torch.full((len(cost), ), -1, dtype=torch.long)
    gt_of_query[pos] = matching[pos].max(1)[1]
    return gt_of_query


def test_stale_count_quirk_fixed():
    # k = 1 for all GTs. All three claim q0 -> GT0 (1 < 2 < 3). GT1, GT2
    # have no query. Round 1: both take the cheapest unused query q1
    # (GT1: 4 < 6 < 9, GT2: 5 < 8 < 9): a new double claim.
    cost = torch.tensor([[1., 2., 3.], [9., 4., 5.], [9., 6., 8.],
                         [9., 9., 9.]])
    ious = torch.full((4, 3), 0.05)
    # Official (stale count): the double claim on q1 is not seen, the loop
    # stops, q1 is given to GT1 (first max) and GT2 has no positive query.
    stale = official_stale_matching(cost, ious, 4)
    assert stale.tolist() == [0, 1, -1, -1]
    assert 2 not in stale.tolist()
    # Fixed: q1 goes to its min-cost GT (GT1: 4 < 5 < 9); round 2: GT2
    # takes its cheapest unused query q2 (8 < 9).
    matching = dynamic_k_matching(cost, ious, 4)
    assert matching.long().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1],
                                        [0, 0, 0]]
    assert (matching.sum(1) <= 1).all()


def test_conflict_goes_to_global_min_cost_gt():
    # k: GT0 int(0.6 + 0.6) = 1, GT1 1, GT2 1. GT0 and GT1 both claim q0
    # (costs 2, 3); GT2's cheapest is q1. q0's min cost over *all* GTs is
    # GT2's (1), as in official IDOL / YOLOX: q0 goes to GT2, then GT0 and
    # GT1 fall back to unused queries: both want q2 -> GT0 (4 < 5), then GT1
    # takes q3.
    cost = torch.tensor([[2., 3., 1.], [8., 8., 0.], [4., 5., 9.],
                         [9., 6., 9.]])
    ious = torch.tensor([[0.6, 0.4, 0.], [0.6, 0.4, 0.], [0., 0., 0.],
                         [0., 0., 0.]])
    matching = dynamic_k_matching(cost, ious, 10)
    assert matching.long().tolist() == [[0, 0, 1], [0, 0, 1], [1, 0, 0],
                                        [0, 1, 0]]


@pytest.mark.parametrize('dtype', [torch.float16, torch.float64])
def test_dtypes_do_not_change_assignment(dtype):
    preds, gts = hand_case()
    preds = InstanceData(
        scores=preds.scores.to(dtype), bboxes=preds.bboxes.to(dtype))
    result = DynamicKAssigner().assign(preds, gts, img_meta=IMG_META)
    assert result.gt_inds.tolist() == [1, 2, 0, 1, 0, 0]
