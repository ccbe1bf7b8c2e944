# Copyright (c) mmookd contributors. All rights reserved.
"""tools/analysis/gpu_selfcheck.py runs on a CPU at tiny sizes (issue 15):
every section, the JSON and the markdown table."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_gpu_selfcheck_runs_tiny_on_cpu(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = str(tmp_path / 'selfcheck')
    proc = subprocess.run([
        sys.executable, 'tools/analysis/gpu_selfcheck.py', '--tiny',
        '--device', 'cpu', '--out', out
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(osp.join(out, 'gpu_selfcheck.json')) as f:
        report = json.load(f)
    assert report['attention']['passed']
    for name in ('idol', 'teacher', 'ookd'):
        assert report['training'][name]['finite'], report['training'][name]
    speed = {r['path']: r for r in report['speed']}
    assert set(speed) == {'reference', 'fast', 'fast + compiled'}
    assert all('error' not in r for r in speed.values()), speed
    assert speed['fast']['per_frame_counts']['syncs'] == 0
    assert speed['fast']['per_frame_counts']['downloads'] <= 2
    assert speed['fast + compiled']['per_frame_counts']['syncs'] == 0
    assert speed['reference']['per_frame_counts']['syncs'] > 10
    assert [r['frames'] for r in report['memory']] == [3, 6]
    with open(osp.join(out, 'gpu_selfcheck.md')) as f:
        table = f.read()
    assert '## Per-frame speed' in table and 'fast + compiled' in table
