# Copyright (c) mmookd contributors. All rights reserved.
"""tools/analysis/plot_toy_rows.py: reads both row formats of the toy
pipeline, mean ± sample std per row, a new 0644 PNG never overwritten."""
import json
import os
import os.path as osp

import pytest

from mmookd.utils import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
plot_rows = load_tool(
    osp.join(REPO, 'tools/analysis/plot_toy_rows.py'), 'plot_toy_rows')


def test_rows_of_both_formats_are_merged_and_plotted(tmp_path):
    out_json = tmp_path / 'rows.json'  # --out-json rows
    out_json.write_text(
        json.dumps([
            dict(model='IDOL (no KD)', seed=0, AP_S=0.2, AP_L=0.04),
            dict(model='IDOL (no KD)', seed=1, AP_S=0.3, AP_L=0.06),
            dict(model='OOKD', seed=0, AP_S=0.25, AP_L=0.07)
        ]))
    out = tmp_path / 'runs.json'  # --out rows replace the same seed
    out.write_text(
        json.dumps([
            dict(
                name='OOKD',
                seed=0,
                metrics={
                    'youtube_vis/short/segm_mAP': 0.26,
                    'youtube_vis/long/segm_mAP': 0.08
                })
        ]))
    rows = plot_rows.load_rows([str(out_json), str(out)])
    assert dict(plot_rows.summarize(rows, 'AP_S')) == {
        'IDOL (no KD)': [0.2, 0.3],
        'OOKD': [0.26]
    }
    mean, std = plot_rows.mean_std([0.2, 0.3])
    assert mean == pytest.approx(0.25) and std == pytest.approx(0.0707107)
    png = tmp_path / 'plot.png'
    old = os.umask(0o022)
    try:
        plot_rows.main([str(out_json), str(out), '--out', str(png)])
    finally:
        os.umask(old)
    assert png.read_bytes()[:4] == b'\x89PNG'
    assert oct(png.stat().st_mode & 0o777) == '0o644'
    with pytest.raises(FileExistsError, match='--force'):
        plot_rows.main([str(out_json), '--out', str(png)])
    with pytest.raises(ValueError, match='no row has HOTA_S'):
        plot_rows.plot(rows, ['HOTA_S'], str(tmp_path / 'x.png'))


def test_the_committed_ablation_rows_match_the_benchmarks_table():
    rows = plot_rows.load_rows(
        [osp.join(REPO, 'docs/results/toy_ablation_3seeds.json')])
    stats = dict(plot_rows.summarize(rows, 'AP_L'))
    assert len(stats['OOKD (KD + QFA + Minor-Paste)']) == 3
    mean, std = plot_rows.mean_std(stats['IDOL (no KD)'])
    assert (round(mean, 3), round(std, 3)) == (0.044, 0.004)
