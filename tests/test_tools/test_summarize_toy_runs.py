# Copyright (c) mmookd contributors. All rights reserved.
"""tools/analysis/summarize_toy_runs.py: merging lanes and seed statistics."""
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import summarize_toy_runs as summ  # noqa: E402


def _row(name, seed, ap, tc=None):
    metrics = {'youtube_vis/segm_mAP': ap}
    if tc is not None:
        metrics['tc/TC_short'] = tc
    return dict(name=name, seed=seed, metrics=metrics)


def test_later_files_replace_the_same_model_and_seed():
    rows = summ.merge_runs([[_row('KD', 0, 0.1),
                             _row('KD', 1, 0.2)], [_row('KD', 0, 0.3)]])
    assert sorted((r['seed'], r['metrics']['youtube_vis/segm_mAP'])
                  for r in rows) == [(0, 0.3), (1, 0.2)]


def test_mean_and_sample_std_by_hand():
    # 0.1, 0.2, 0.3: mean 0.2, sample variance (0.01 + 0 + 0.01) / 2
    summary = summ.summarize(
        [_row('KD', s, ap) for s, ap in enumerate([0.1, 0.2, 0.3])] +
        [_row('base', 0, 0.5, tc=70.0)],
        keys=summ.KEYS + summ.TC_KEYS)
    kd, base = summary
    assert kd['seeds'] == [0, 1, 2]
    mean, std = kd['stats']['AP']
    assert mean == pytest.approx(0.2) and std == pytest.approx(0.1)
    assert 'TC_S' not in kd['stats'] and base['stats']['TC_S'] == (70.0, 0.0)
    table = summ.format_summary(summary, summ.KEYS + summ.TC_KEYS)
    assert '| KD | 0,1,2 | 0.200 ± 0.100 |' in table
    # a single seed prints no spread, a missing metric a dash
    assert '| base | 0 | 0.500 | - |' in table and '| 70.0 | - |' in table
