# Copyright (c) mmookd contributors. All rights reserved.
"""QFAAssigner (OOKD paper eqs. 2-3) on cases computed by hand."""
import math

import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmookd  # noqa: F401
from mmookd.models.task_modules import QFAAssigner, QFAResult


def bce(logit: float) -> float:
    """Sigmoid-mode class cost: -log(sigmoid(logit) + 1e-8)."""
    return -math.log(1 / (1 + math.exp(-logit)) + 1e-8)


def log_softmax_cost(logits, c: int) -> float:
    return -(logits[c] - math.log(sum(math.exp(v) for v in logits)))


# Three queries, 3 classes; all boxes have y in [0, 10].
LOGITS = [[2., 0., -1.], [0., 0., 1.], [1., 0., 0.]]
BOXES = [[0, 0, 10, 10], [20, 0, 30, 10], [5, 0, 15, 10]]
# GT0 label 0 [0,0,10,10]; GT1 label 2 [20,0,30,10];
# GT2 label 1 [50,50,60,60] (no query fits it).
GT_LABELS = [0, 2, 1]
GT_BOXES = [[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]]
# 1 - GIoU by hand (GIoU = IoU - (enclosing - union) / enclosing):
GIOU_LOSS = [
    # q0 = GT0; vs GT1: IoU 0, enclosing [0,0,30,10] 300, union 200;
    # vs GT2: enclosing [0,0,60,60] 3600, union 200.
    [0., 1 + 100 / 300, 1 + 3400 / 3600],
    # q1: vs GT0 as q0 vs GT1; = GT1; vs GT2: enclosing [20,0,60,60] 2400.
    [1 + 100 / 300, 0., 1 + 2200 / 2400],
    # q2 [5,0,15,10]: vs GT0 IoU 50/150, enclosing 150 -> GIoU 1/3;
    # vs GT1 enclosing [5,0,30,10] 250, union 200 -> GIoU -0.2;
    # vs GT2 enclosing [5,0,60,60] 3300, union 200.
    [1 - 1 / 3, 1 + 50 / 250, 1 + 3100 / 3300],
]


def hand_cost(lambda_b: float = 1.0, mode: str = 'sigmoid'):
    cost = []
    for n, logits in enumerate(LOGITS):
        row = []
        for m, label in enumerate(GT_LABELS):
            cls = bce(logits[label]) if mode == 'sigmoid' else \
                log_softmax_cost(logits, label)
            row.append(cls + lambda_b * GIOU_LOSS[n][m])
        cost.append(row)
    return torch.tensor(cost, dtype=torch.float64)


def instances(num_gts: int = 3, pred_rows=None):
    rows = range(len(LOGITS)) if pred_rows is None else pred_rows
    preds = InstanceData(
        scores=torch.tensor([LOGITS[r] for r in rows]).reshape(-1, 3),
        bboxes=torch.tensor([BOXES[r] for r in rows]).float().reshape(-1, 4))
    gts = InstanceData(
        labels=torch.tensor(GT_LABELS[:num_gts], dtype=torch.long),
        bboxes=torch.tensor(GT_BOXES[:num_gts]).float().reshape(-1, 4))
    return preds, gts


def test_built_by_mmdet_registry():
    assigner = TASK_UTILS.build(
        dict(type='QFAAssigner', lambda_b=2.0, cls_mode='softmax'))
    assert isinstance(assigner, QFAAssigner)
    assert assigner.lambda_b == 2.0 and assigner.cls_mode == 'softmax'
    assert 'lambda_b=2.0' in repr(assigner)
    with pytest.raises(ValueError, match='cls_mode'):
        QFAAssigner(cls_mode='focal')


@pytest.mark.parametrize('lambda_b', [1.0, 2.0])
def test_cost_matrix_and_argmin_by_hand(lambda_b):
    preds, gts = instances(num_gts=2)
    result = QFAAssigner(lambda_b=lambda_b).assign(preds, gts)
    expected = hand_cost(lambda_b)[:, :2]
    assert isinstance(result, QFAResult)
    torch.testing.assert_close(
        result.cost_matrix.double(), expected, rtol=0, atol=1e-5)
    # GT0: q0 (0.127) < q2 (0.980) < q1; GT1: q1 (0.313) < q2 < q0.
    assert result.matched_pred_inds.tolist() == [0, 1]
    assert result.matched_pred_inds.dtype == torch.long
    torch.testing.assert_close(
        result.costs.double(),
        torch.stack([expected[0, 0], expected[1, 1]]),
        rtol=0,
        atol=1e-5)
    assert result.filtered_pred_mask.tolist() == [False, False, True]
    assert result.matched_gt_mask.tolist() == [True, True]
    assert (result.num_gts, result.num_preds) == (2, 3)


def test_poorly_fitting_gt_and_max_cost():
    preds, gts = instances(num_gts=3)
    expected = hand_cost()
    # GT2 fits nothing but still takes its argmin: q1 (2.61 < 2.63 < 2.64).
    result = QFAAssigner().assign(preds, gts)
    assert result.matched_pred_inds.tolist() == [0, 1, 1]
    assert result.costs[2].item() == pytest.approx(
        expected[1, 2].item(), abs=1e-5)
    assert result.costs[2].item() > 2.5
    assert result.filtered_pred_mask.tolist() == [False, False, True]

    # max_cost: GT2 unmatched; q1 is still kept by GT1.
    result = QFAAssigner(max_cost=2.0).assign(preds, gts)
    assert result.matched_pred_inds.tolist() == [0, 1, -1]
    assert result.matched_gt_mask.tolist() == [True, True, False]
    assert result.costs[2].item() == pytest.approx(
        expected[1, 2].item(), abs=1e-5)
    assert result.filtered_pred_mask.tolist() == [False, False, True]

    # A lower threshold drops GT1 too, so q1 is filtered as well.
    result = QFAAssigner(max_cost=0.2).assign(preds, gts)
    assert result.matched_pred_inds.tolist() == [0, -1, -1]
    assert result.filtered_pred_mask.tolist() == [False, True, True]
    # A cost equal to max_cost still matches.
    result = QFAAssigner(max_cost=result.costs[0].item()).assign(preds, gts)
    assert result.matched_pred_inds.tolist()[0] == 0


def test_equal_minima_take_lowest_index():
    # q1 and q2 are identical copies of the best query for GT0; q0 worse.
    preds = InstanceData(
        scores=torch.tensor([[-3., 0.], [3., 0.], [3., 0.]]),
        bboxes=torch.tensor([[0., 0., 5., 5.], [0., 0., 10., 10.],
                             [0., 0., 10., 10.]]))
    gts = InstanceData(
        labels=torch.tensor([0]), bboxes=torch.tensor([[0., 0., 10., 10.]]))
    result = QFAAssigner().assign(preds, gts)
    assert result.matched_pred_inds.tolist() == [1]
    assert result.filtered_pred_mask.tolist() == [True, False, True]
    # All equal -> query 0.
    preds = InstanceData(
        scores=torch.zeros(4, 2),
        bboxes=torch.tensor([[0., 0., 10., 10.]] * 4))
    assert QFAAssigner().assign(preds, gts).matched_pred_inds.tolist() == [0]


def test_no_gts():
    preds, gts = instances(num_gts=0)
    result = QFAAssigner().assign(preds, gts)
    assert result.matched_pred_inds.shape == (0, )
    assert result.matched_pred_inds.dtype == torch.long
    assert result.costs.shape == (0, )
    assert result.cost_matrix.shape == (3, 0)
    assert result.filtered_pred_mask.tolist() == [True, True, True]


def test_no_preds():
    preds, gts = instances(num_gts=2, pred_rows=[])
    result = QFAAssigner().assign(preds, gts)
    assert result.matched_pred_inds.tolist() == [-1, -1]
    assert torch.isinf(result.costs).all()
    assert result.filtered_pred_mask.shape == (0, )
    assert result.cost_matrix.shape == (0, 2)


def test_fewer_preds_than_gts_share_a_query():
    # Only q2 (between GT0 and GT1): both GTs keep it (eq. 3 is per GT).
    preds, gts = instances(num_gts=2, pred_rows=[2])
    result = QFAAssigner().assign(preds, gts)
    assert result.matched_pred_inds.tolist() == [0, 0]
    expected = hand_cost()[2, :2]
    torch.testing.assert_close(
        result.costs.double(), expected, rtol=0, atol=1e-5)
    assert result.filtered_pred_mask.tolist() == [False]


def test_softmax_mode():
    preds, gts = instances(num_gts=3)
    result = QFAAssigner(cls_mode='softmax').assign(preds, gts)
    expected = hand_cost(mode='softmax')
    torch.testing.assert_close(
        result.cost_matrix.double(), expected, rtol=0, atol=1e-5)
    assert result.matched_pred_inds.tolist() == expected.argmin(0).tolist()
    assert result.matched_pred_inds.tolist() == [0, 1, 1]


def test_no_grad_and_bad_labels():
    preds, gts = instances(num_gts=2)
    preds.scores.requires_grad_(True)
    preds.bboxes.requires_grad_(True)
    result = QFAAssigner().assign(preds, gts)
    assert not result.costs.requires_grad
    assert not result.cost_matrix.requires_grad
    gts.labels = torch.tensor([0, 3])
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        QFAAssigner().assign(preds, gts)
