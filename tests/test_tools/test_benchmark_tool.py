# Copyright (c) mmookd contributors. All rights reserved.
"""Smoke test of tools/analysis/benchmark.py: it runs on CPU with random
weights and writes a per-precision result with latency and memory."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py'


def test_benchmark_runs_and_reports(tmp_path):
    out = str(tmp_path / 'bench.json')
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/analysis/benchmark.py', TOY_CFG, '--shape',
        '64', '96', '--frames', '3', '--warmup', '1', '--precision', 'fp32',
        '--device', 'cpu', '--out', out
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'fp32' in proc.stdout
    with open(out) as f:
        text = f.read()
    assert 'fp32' in text
    json.loads(text)


def test_benchmark_fast_path_counts_and_postprocess_tool(tmp_path):
    """``--fast``: the per-frame counts beside the latency (no profiler sync
    point, two downloads); tools/analysis/fast_path_benchmark.py times the
    post-processing of both paths on scripted objects and the networks."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = str(tmp_path / 'bench.json')
    proc = subprocess.run([
        sys.executable, 'tools/analysis/benchmark.py', TOY_CFG, '--shape',
        '64', '96', '--frames', '2', '--warmup', '1', '--open-thresholds',
        '--fast', '--device', 'cpu', '--out', out
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(out) as f:
        row = json.load(f)['latency'][0]
    counts = row['per_frame_counts']
    assert counts['syncs'] == 0 and counts['downloads'] <= 2
    assert counts['aten_calls'] > 100
    out = str(tmp_path / 'post.json')
    proc = subprocess.run([
        sys.executable, 'tools/analysis/fast_path_benchmark.py', TOY_CFG,
        '--shape', '96', '128', '--instances', '3', '--frames', '2',
        '--warmup', '1', '--network', '--ddetr-config', '', '--device', 'cpu',
        '--out', out
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(out) as f:
        report = json.load(f)
    row = report['postprocess'][0]
    assert row['reference']['outputs_per_frame'] == 3
    assert row['fast']['outputs_per_frame'] == 3
    assert report['network'][0]['mode'] == 'eager'
