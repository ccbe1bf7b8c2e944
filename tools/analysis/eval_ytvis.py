# Copyright (c) mmookd contributors. All rights reserved.
"""Evaluate a YouTube-VIS / OVIS results JSON offline.

Uses the official evaluator (see ``mmookd.evaluation.functional``), so the
numbers are those of the evaluation servers for the same file.

Examples::

    # YouTube-VIS 2019/2021, OVIS (a split with public GT)
    python tools/analysis/eval_ytvis.py results.json --gt valid_gt.json

    # YouTube-VIS 2022: AP_S on the short videos, AP_L on the long ones,
    # challenge metric = (AP_S + AP_L) / 2
    python tools/analysis/eval_ytvis.py results.json \\
        --gt-short valid_short.json --gt-long valid_long.json
"""
import argparse
import logging
import sys
from typing import Dict, List, Optional

from mmookd.evaluation.functional import (
    YTVIS_METRIC_NAMES,
    evaluate_ytvis,
    evaluate_ytvis_subsets,
)
from mmookd.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate a YouTube-VIS/OVIS results JSON with the '
        'official evaluator.')
    parser.add_argument('results', help='results JSON (official format)')
    parser.add_argument('--gt', help='ground-truth JSON (YouTube-VIS format)')
    parser.add_argument(
        '--gt-short', help='YouTube-VIS 2022: GT JSON of the short videos')
    parser.add_argument(
        '--gt-long', help='YouTube-VIS 2022: GT JSON of the long videos')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='also print the evaluator log (summary lines, warnings)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if bool(args.gt) == bool(args.gt_short or args.gt_long):
        parser.error('give either --gt, or --gt-short and --gt-long')
    if not args.gt and not (args.gt_short and args.gt_long):
        parser.error('--gt-short and --gt-long go together')
    return args


def format_table(columns: Dict[str, Dict[str, float]]) -> str:
    """Rows = the 12 statistics, one column per evaluated (sub)set."""
    names = list(columns)
    width = max(len(n) for n in YTVIS_METRIC_NAMES + tuple(names)) + 2
    header = 'metric'.ljust(width) + ''.join(n.rjust(width) for n in names)
    lines = [header, '-' * len(header)]
    for metric in YTVIS_METRIC_NAMES:
        lines.append(
            metric.ljust(width) +
            ''.join(f'{columns[n][metric]:.4f}'.rjust(width) for n in names))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Run the evaluation, print a table and return the statistics.

    Returns:
        dict[str, float]: The 12 statistics for ``--gt``. For short/long
        subsets: ``mAP`` = (AP_S + AP_L) / 2, ``mAP_short``, ``mAP_long``
        and every statistic as ``{subset}/{name}``.
    """
    args = parse_args(argv)
    logger = logging.getLogger('eval_ytvis')
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)

    if args.gt:
        stats = evaluate_ytvis(args.gt, args.results, logger=logger)
        print(format_table({'value': stats}))
        return stats

    subsets = evaluate_ytvis_subsets(
        dict(short=args.gt_short, long=args.gt_long),
        args.results,
        logger=logger)
    print(format_table(subsets))
    overall = (subsets['short']['mAP'] + subsets['long']['mAP']) / 2
    print(f'\nYouTube-VIS 2022 mAP = (AP_S + AP_L) / 2 = '
          f"({subsets['short']['mAP']:.4f} + {subsets['long']['mAP']:.4f})"
          f' / 2 = {overall:.4f}')
    stats = dict(mAP=overall)
    for name, values in subsets.items():
        stats[f'mAP_{name}'] = values['mAP']
    for name, values in subsets.items():
        stats.update({f'{name}/{k}': v for k, v in values.items()})
    return stats


if __name__ == '__main__':
    sys.exit(run_cli(main))
