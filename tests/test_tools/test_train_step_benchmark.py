# Copyright (c) mmookd contributors. All rights reserved.
"""``tools/analysis/train_step_benchmark.py``: one config, and two configs
timed in turn with their step-by-step ratio (``--vs``)."""
import json
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
import train_step_benchmark  # noqa: E402

TOY = osp.join(REPO, 'configs/toy/ookd_r18-tiny_1xb2-toyvis_no-kd.py')

pytestmark = pytest.mark.usefixtures('single_thread')


def test_vs_prints_both_configs_and_their_ratio(tiny_toyvis, capsys):
    assert train_step_benchmark.main([
        TOY, '--vs', TOY, '--data-root', tiny_toyvis, '--iters', '2',
        '--warmup', '0', '--threads', '1'
    ]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['a']['iters'] == out['b']['iters'] == 2
    assert out['a']['config'] == out['b']['config'] == TOY
    assert out['ratio_min'] <= out['ratio_median'] <= out['ratio_max']
    assert out['ratio_min'] > 0
