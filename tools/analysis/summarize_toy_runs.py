# Copyright (c) mmookd contributors. All rights reserved.
"""Summarise ``tools/toy_pipeline.py --out`` files: one row per model with
the mean and sample standard deviation of each metric over its seeds.

Several ``--out`` files (e.g. lanes run in parallel, or later seeds) are
merged; a (model, seed) pair seen twice keeps the last file's row, so a
re-evaluation replaces an older one.

Example::

    python tools/analysis/summarize_toy_runs.py runs_seed0.json \\
        runs_seed12.json --tc
"""
import argparse
import json
import math
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from mmookd.utils.cli import add_debug_argument, run_cli
from mmookd.utils.results_table import TABLE_KEYS, TC_KEYS

# the pipeline's table columns, without the recall ones
KEYS = [(short, f'youtube_vis/{key}') for short, key in TABLE_KEYS
        if not short.startswith('AR')]


def merge_runs(runs: Sequence[List[Dict]]) -> List[Dict]:
    """Rows of several ``--out`` files; later files replace earlier rows of
    the same (model, seed)."""
    merged: Dict[Tuple[str, int], Dict] = {}
    for rows in runs:
        for row in rows:
            merged[(row['name'], row['seed'])] = row
    return list(merged.values())


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))


def summarize(rows: List[Dict],
              keys: Sequence[Tuple[str, str]] = KEYS) -> List[Dict]:
    """Per model (first-seen order): seeds and (mean, std) per key; a key a
    row lacks is skipped for that row."""
    by_model: Dict[str, List[Dict]] = {}
    for row in rows:
        by_model.setdefault(row['name'], []).append(row)
    out = []
    for name, group in by_model.items():
        stats = {}
        for short, key in keys:
            vals = [r['metrics'][key] for r in group if key in r['metrics']]
            if vals:
                stats[short] = mean_std(vals)
        out.append(
            dict(
                name=name, seeds=sorted(r['seed'] for r in group),
                stats=stats))
    return out


def format_summary(summary: List[Dict],
                   keys: Sequence[Tuple[str, str]] = KEYS) -> str:
    head = ['model', 'seeds'] + [k for k, _ in keys]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for s in summary:
        cells = []
        for short, _ in keys:
            if short not in s['stats']:
                cells.append('-')
                continue
            mean, std = s['stats'][short]
            fmt = '%.1f' if short.startswith('TC') else '%.3f'
            cell = fmt % mean
            if len(s['seeds']) > 1:
                cell += ' ± ' + fmt % std
            cells.append(cell)
        seeds = ','.join(map(str, s['seeds']))
        lines.append('| ' + ' | '.join([s['name'], seeds] + cells) + ' |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('files', nargs='+', help='toy_pipeline --out JSONs')
    parser.add_argument('--tc', action='store_true', help='add TC columns')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    runs = []
    for path in args.files:
        with open(path) as f:
            try:
                rows = json.load(f)
            except ValueError as err:
                raise ValueError(f'{path} is not a toy_pipeline --out JSON: '
                                 f'{err}') from None
        if not isinstance(rows, list) or not all(
                isinstance(r, dict) and {'name', 'seed', 'metrics'} <= set(r)
                for r in rows):
            raise ValueError(f'{path} is not a toy_pipeline --out JSON (a '
                             'list of rows with name, seed and metrics)')
        runs.append(rows)
    keys = KEYS + (TC_KEYS if args.tc else [])
    print(format_summary(summarize(merge_runs(runs), keys), keys))


if __name__ == '__main__':
    sys.exit(run_cli(main))
