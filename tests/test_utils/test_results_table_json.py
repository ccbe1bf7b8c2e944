# Copyright (c) mmookd contributors. All rights reserved.
"""Benchmark rows as data: ``toy_pipeline --out-json`` and ``--merge-json``
(the ablation rows join the main rows' file, docs/results/toy_ookd.json)."""
import json

import pytest

from mmookd.utils import results_table


def row(model, seed, ap, num_val=24, num_long_val=12):
    return dict(
        model=model,
        seed=seed,
        AP=ap,
        AP_S=ap,
        AP_L=ap,
        num_val=num_val,
        num_long_val=num_long_val)


def test_merge_replaces_same_model_seed_and_sizes_keeps_the_rest():
    old = [row('baseline', 0, 0.1), row('ookd', 0, 0.2), row('ookd', 1, 0.3)]
    new = [
        row('baseline', 0, 0.1),  # re-evaluated: replaced in place
        row('ookd', 1, 0.35),  # changed: this run's number wins
        row('kd-qfa', 0, 0.4),  # new: appended
        row('ookd', 0, 0.5, num_val=8),  # other sizes: another row
    ]
    merged = results_table.merge_rows(old, new)
    assert merged == [
        row('baseline', 0, 0.1),
        row('ookd', 0, 0.2),
        row('ookd', 1, 0.35),
        row('kd-qfa', 0, 0.4),
        row('ookd', 0, 0.5, num_val=8)
    ]


def test_write_json_rows_refuses_merges_and_forces(tmp_path):
    path = str(tmp_path / 'sub' / 'rows.json')
    results_table.write_json_rows(path, [row('baseline', 0, 0.1)])
    with pytest.raises(FileExistsError):
        results_table.write_json_rows(path, [row('ookd', 0, 0.2)])
    results_table.write_json_rows(path, [row('ookd', 0, 0.2)], merge=True)
    with open(path) as f:
        assert [r['model'] for r in json.load(f)] == ['baseline', 'ookd']
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == [
        'rows.json'
    ]  # no temporary file left
    results_table.write_json_rows(path, [row('teacher', 0, 0.3)], force=True)
    with open(path) as f:
        assert [r['model'] for r in json.load(f)] == ['teacher']
