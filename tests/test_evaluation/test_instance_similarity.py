# Copyright (c) mmookd contributors. All rights reserved.
"""The paper's Fig. 6 analysis (same-instance cosine similarity across
frames) and the knowledge-bank retrieval rate: hand cases, and the tool on
a tiny random model."""
import json
import math
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmookd.models  # noqa: F401
from mmookd.evaluation.functional import (
    bank_retrieval,
    same_instance_similarities,
)
from mmookd.models.utils import KnowledgeBank
from mmookd.utils import load_tool

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_IDOL = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')


def test_same_instance_similarities_by_hand():
    embeds = {
        (0, 1): [
            torch.tensor([1., 0.]),
            torch.tensor([1., 1.]),
            torch.tensor([0., 1.])
        ],
        (0, 2): [torch.tensor([1., 0.])],  # one frame: no pair
        (3, 1): [torch.tensor([1., 0.]),
                 torch.tensor([-2., 0.])],
    }
    sims = same_instance_similarities(embeds)
    r = 1 / math.sqrt(2)
    # (0, 1): pairs (0, 1), (0, 2), (1, 2); then (3, 1)
    assert sims.tolist() == pytest.approx([r, 0.0, r, -1.0])
    drawn = same_instance_similarities(embeds, pairs_per_instance=1, seed=0)
    assert drawn.numel() == 2
    assert torch.equal(
        drawn, same_instance_similarities(embeds, pairs_per_instance=1))


def test_bank_retrieval_by_hand():
    bank_keys = [(0, 1), (0, 2), (5, 1)]
    bank = torch.tensor([[1., 0.], [0., 1.], [0.9, 0.1]])
    embeds = {
        (0, 1): [
            torch.tensor([1., 0.05]),  # nearest: (0, 1) yes
            torch.tensor([0.95, 0.12])
        ],  # nearest overall (5, 1)
        (0, 2): [torch.tensor([0.1, 1.])],  # (0, 2) yes
        (9, 9): [torch.tensor([1., 0.])],  # no entry: left out
    }
    res = bank_retrieval(embeds, bank_keys, bank)
    assert res['num'] == 3
    assert res['top1_all'] == pytest.approx(2 / 3)
    assert res['top1_video'] == pytest.approx(1.0)  # (5, 1) is elsewhere


def test_tool_on_a_tiny_random_model(tiny_toyvis, tmp_path):
    tool = load_tool(
        osp.join(REPO, 'tools/analysis/instance_similarity.py'),
        'instance_similarity')
    main = tool.main
    torch.manual_seed(0)
    cfg = Config.fromfile(TOY_IDOL)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'idol.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    bank = KnowledgeBank(torch.randn(2, 64), [0, 0], [1, 2], labels=[0, 0])
    bank_path = str(tmp_path / 'bank.pth')
    bank.save(bank_path)
    out = str(tmp_path / 'fig6')
    report = main([
        TOY_IDOL, '--checkpoints', ckpt, ckpt, '--names', 'a', 'b', '--splits',
        'train', 'long_val', '--data-root', tiny_toyvis, '--bank', bank_path,
        '--out-dir', out, '--max-videos', '1', '--threads', '1'
    ])
    for split in ('train', 'long_val'):
        assert osp.isfile(osp.join(out, f'instance_similarity_{split}.png'))
        a, b = report[split]['a'], report[split]['b']
        assert a['num_pairs'] > 0 and -1 <= a['mean'] <= 1
        assert a['mean'] == b['mean']  # same weights, same numbers
    assert 'bank' in report['train']['a']
    assert 'bank' not in report['long_val']['a']
    with open(osp.join(out, 'instance_similarity.json')) as f:
        assert json.load(
            f)['train']['a']['mean'] == report['train']['a']['mean']
    with pytest.raises(ValueError, match='unknown split'):
        main([
            TOY_IDOL, '--checkpoints', ckpt, '--splits', 'nope', '--data-root',
            tiny_toyvis, '--out-dir', out
        ])
