# Copyright (c) mmookd contributors. All rights reserved.
"""Plot toy-pipeline rows: mean ± sample standard deviation over seeds of
each row, one panel per metric (default AP_S and AP_L), every seed as a dot.

Reads ``tools/toy_pipeline.py --out-json`` files (``{model, seed, AP,
AP_S, AP_L, ...}``) or ``--out`` files (``{name, seed, metrics}``); several
files are merged, a (model, seed) pair seen twice keeps the last file's.

Example::

    python tools/analysis/plot_toy_rows.py \\
        docs/results/toy_ablation_3seeds.json \\
        --out docs/images/toy_ablation_3seeds.png

The output is never overwritten unless ``--force`` is given.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmookd.utils import cli  # noqa: E402

# --out files: metric name -> key in a row's metrics
OUT_KEYS = {
    'AP': 'youtube_vis/segm_mAP',
    'AP_S': 'youtube_vis/short/segm_mAP',
    'AP_L': 'youtube_vis/long/segm_mAP',
    'HOTA_S': 'youtube_vis/short/HOTA',
    'HOTA_L': 'youtube_vis/long/HOTA',
}


def load_rows(paths: Sequence[str]) -> List[Dict]:
    """``{model, seed, <metric>: value}`` rows of the files, merged."""
    merged: Dict[Tuple[str, int], Dict] = {}
    for path in paths:
        with open(path) as f:
            rows = json.load(f)
        if not isinstance(rows, list):
            raise ValueError(f'{path}: expected a list of rows')
        for row in rows:
            if 'metrics' in row:  # an --out file
                flat = dict(model=row['name'], seed=row['seed'])
                for short, key in OUT_KEYS.items():
                    if key in row['metrics']:
                        flat[short] = row['metrics'][key]
                row = flat
            if 'model' not in row or 'seed' not in row:
                raise ValueError(f'{path}: a row without model / seed: {row}')
            merged[(row['model'], row['seed'])] = row
    return list(merged.values())


def summarize(rows: Sequence[Dict],
              metric: str) -> List[Tuple[str, List[float]]]:
    """Per model (first-seen order), the metric's values over its seeds."""
    out: Dict[str, List[float]] = {}
    for row in rows:
        if row.get(metric) is not None:
            out.setdefault(row['model'], []).append(float(row[metric]))
    return list(out.items())


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, var**0.5


def plot(rows: Sequence[Dict],
         metrics: Sequence[str],
         out: str,
         title: Optional[str] = None,
         force: bool = False,
         baseline: Optional[str] = 'IDOL (no KD)') -> None:
    """Draw the panels and write ``out`` (a new file, ordinary mode);
    a dashed line marks the ``baseline`` row's mean when it is there."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cli.check_new_file(out, '--out', force)
    models: List[str] = []
    for row in rows:
        if row['model'] not in models:
            models.append(row['model'])
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.4 * len(metrics) + 2.2, 0.45 * len(models) + 1.3),
        sharey=True,
        squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        stats = dict(summarize(rows, metric))
        if not stats:
            raise ValueError(f'no row has {metric}')
        for y, model in enumerate(models):
            values = stats.get(model)
            if not values:
                continue
            mean, std = mean_std(values)
            ax.errorbar(
                mean,
                y,
                xerr=std if len(values) > 1 else None,
                fmt='o',
                color='C0' if len(values) > 1 else 'C7',
                capsize=4,
                markersize=7,
                zorder=3)
            ax.scatter(
                values, [y] * len(values),
                s=14,
                color='black',
                alpha=0.45,
                zorder=4)
            label = f'{mean:.3f}' + (f' ± {std:.3f}'
                                     if len(values) > 1 else ' (1 seed)')
            ax.annotate(
                label, (mean, y),
                xytext=(0, 8),
                textcoords='offset points',
                ha='center',
                fontsize=7)
        if baseline in stats:
            ax.axvline(
                mean_std(stats[baseline])[0],
                color='C0',
                linestyle='--',
                linewidth=0.8,
                alpha=0.6,
                zorder=1)
        ax.set_title(metric)
        ax.grid(axis='x', alpha=0.3)
        ax.margins(x=0.15)
    axes[0][0].set_yticks(range(len(models)))
    axes[0][0].set_yticklabels(models)
    axes[0][0].set_ylim(len(models) - 0.4, -0.6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='+', help='rows JSON files')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument(
        '--metrics', nargs='+', default=['AP_S', 'AP_L'], help='panels')
    parser.add_argument('--title', help='figure title')
    parser.add_argument(
        '--baseline',
        default='IDOL (no KD)',
        help='row whose mean is marked by a dashed line')
    parser.add_argument('--force', action='store_true', help='overwrite --out')
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cli.check_new_file(args.out, '--out', args.force)
    rows = load_rows(args.files)
    plot(rows, args.metrics, args.out, args.title, args.force, args.baseline)
    print(f'wrote {args.out}: {len({r["model"] for r in rows})} rows, '
          f'{", ".join(args.metrics)}')


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
