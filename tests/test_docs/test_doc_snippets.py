# Copyright (c) mmookd contributors. All rights reserved.
"""Code that the docs tell users to copy runs as written: the worked QFA +
cosine KD snippet of docs/mixin.md on a made-up frame (a loss with a
gradient for the student embeddings)."""
import os.path as osp
import re

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _python_blocks(path: str, section: str) -> list:
    with open(osp.join(ROOT, path)) as f:
        text = f.read()
    start = text.index(section)
    end = text.find('\n## ', start + len(section))
    body = text[start:end if end >= 0 else len(text)]
    return re.findall(r'```python\n(.*?)```', body, flags=re.S)


def _boxes(n: int, gen: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * 50
    return torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=gen) * 20], 1)


def test_mixin_qfa_and_kd_snippet_runs():
    from mmengine.registry import init_default_scope

    import mmookd  # noqa: F401
    init_default_scope('mmdet')
    blocks = _python_blocks('docs/mixin.md',
                            '## QFA and the cosine KD loss for any')
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], 'docs/mixin.md', 'exec'), namespace)
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(10, 16, generator=gen, requires_grad=True)
    s_logits, s_boxes = torch.randn(10, 5, generator=gen), _boxes(10, gen)
    gt_labels, gt_boxes = torch.tensor([1, 3]), _boxes(2, gen)
    loss = namespace['kd_one_frame'](s_logits, s_boxes, student,
                                     torch.randn(8, 5, generator=gen),
                                     _boxes(8, gen),
                                     torch.randn(8, 16, generator=gen),
                                     gt_labels, gt_boxes)
    assert 0 < float(loss) <= 2  # 1 - cos per matched instance
    loss.backward()
    # the student queries QFA matched to the instances get a gradient, no
    # other query
    from mmengine.structures import InstanceData
    matched = namespace['qfa'].assign(
        InstanceData(scores=s_logits, bboxes=s_boxes),
        InstanceData(labels=gt_labels, bboxes=gt_boxes)).matched_pred_inds
    has_grad = (student.grad.abs().sum(1) > 0).nonzero().flatten()
    assert set(has_grad.tolist()) == set(matched.tolist()) != set()
