# Copyright (c) mmookd contributors. All rights reserved.
"""The main job's results: the markdown table of the rows and the plain
sentences that say what it shows, computed from the numbers
(``tools/toy_pipeline.py``; a row is ``{name, seed, metrics, train_s,
test_s}``)."""
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = [
    'TABLE_KEYS', 'CONSOLE_KEYS', 'TC_KEYS', 'format_table', 'split_sizes',
    'reading', 'free_path', 'write_new_file'
]

TABLE_KEYS = [('AP', 'segm_mAP'), ('AP_S', 'short/segm_mAP'),
              ('AP_L', 'long/segm_mAP'), ('AP50_S', 'short/segm_mAP_50'),
              ('AP50_L', 'long/segm_mAP_50'), ('AR10_S', 'short/segm_AR@10'),
              ('AR10_L', 'long/segm_AR@10'), ('HOTA_S', 'short/HOTA'),
              ('HOTA_L', 'long/HOTA'), ('AssA_S', 'short/AssA'),
              ('AssA_L', 'long/AssA'), ('IDF1_S', 'short/IDF1'),
              ('IDF1_L', 'long/IDF1')]  # the last six: TrackEval's
# the console table's columns (the markdown file next to it has them all)
CONSOLE_KEYS = ['AP', 'AP_S', 'AP_L', 'HOTA_S', 'HOTA_L', 'AssA_L', 'IDF1_L']
TC_KEYS = [('TC_S', 'tc/TC_short'), ('TC_L', 'tc/TC_long')]


def format_table(rows: List[Dict],
                 tc: bool = False,
                 columns: Optional[Sequence[str]] = None) -> str:
    """Markdown table of the rows; ``columns`` picks some of
    ``TABLE_KEYS`` (default: all), ``tc`` adds the TC columns."""
    keys = [(k, f'youtube_vis/{v}') for k, v in TABLE_KEYS
            if columns is None or k in columns]
    keys += TC_KEYS if tc else []
    head = ['model', 'seed'] + [k for k, _ in keys] + ['train s', 'test s']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        m = row['metrics']
        vals = [('%.1f' if name.startswith('TC') else '%.3f') %
                m.get(key, float('nan')) for name, key in keys]
        lines.append('| ' + ' | '.join(
            [row['name'], str(row['seed'])] + vals +
            ['%.0f' %
             row['train_s'], '%.0f' % row['test_s']]) + ' |')
    return '\n'.join(lines)


def split_sizes(data_root: str) -> Dict[str, int]:
    """Number of videos of the val and long_val splits."""
    sizes = {}
    for split in ('val', 'long_val'):
        path = osp.join(data_root, 'annotations', f'toyvis_{split}.json')
        with open(path) as f:
            sizes[split] = len(json.load(f)['videos'])
    return sizes


# what the reading sentences compare: AP_S on val, AP_L on long_val
_SPLITS = (('AP_S', 'youtube_vis/short/segm_mAP', 'short videos', 'val'),
           ('AP_L', 'youtube_vis/long/segm_mAP', 'long videos', 'long_val'))


def _mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (``None`` for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, var**0.5


def _verb(diff: float, other: str, amount: str) -> str:
    if round(diff, 3) == 0:
        return f'ties {other} on {amount}'
    verb = 'beats' if diff > 0 else 'trails'
    return f'{verb} {other} by {abs(diff):.3f} {amount}'


def reading(rows: List[Dict],
            sizes: Dict[str, int],
            baseline: str = 'IDOL (no KD)',
            teacher: str = 'offline teacher',
            student: str = 'OOKD') -> List[str]:
    """Plain sentences that say what the table shows, computed from its
    rows: which row is best on short and on long videos, by how much the
    OOKD student (else the first other fine-tuned row) differs from the
    baseline, and whether that is beyond the baseline's seed-to-seed
    spread (more than twice its sample standard deviation) or, with one
    seed, that the spread is unknown.

    Args:
        rows: Rows with ``name``, ``seed`` and ``metrics`` (as
            :func:`run` returns them, or an ``--out`` file holds them).
        sizes: Videos per split, ``{'val': 8, 'long_val': 6}``.
        baseline, teacher: The names of the baseline and teacher rows.
        student: The start of the student row's name (``' [bank]'`` and
            the like may follow).
    """
    by_model: Dict[str, List[Dict]] = {}
    for row in rows:
        by_model.setdefault(row['name'], []).append(row)

    def values(name: str, key: str) -> List[float]:
        return [
            r['metrics'][key] for r in by_model[name] if key in r['metrics']
        ]

    several = any(len(group) > 1 for group in by_model.values())
    mean_of = ' (mean over seeds)' if several else ''
    best = []
    for short, key, where, split in _SPLITS:
        scored = {
            n: round(_mean_std(values(n, key))[0], 3)
            for n in by_model if values(n, key)
        }
        if not scored:
            return []
        top = max(scored.values())
        names = [n for n, v in scored.items() if v == top]
        num = sizes.get(split, '?')
        what = (f'{where} ({split}, {num} video{"" if num == 1 else "s"}, '
                f'{short} {top:.3f})')
        if len(names) == len(scored) > 1:
            who = 'all rows tie'
        elif len(names) > 1:
            who = ' and '.join(names) + ' tie'
        else:
            who = names[0]
        best.append((who, what))
    if len(by_model) == 1:
        out = [
            f'Only {best[0][0]} ran: {best[0][1]} and {best[1][1]}'
            f'{mean_of}.'
        ]
    elif best[0][0] == best[1][0] and ' tie' not in best[0][0]:
        out = [
            f'{best[0][0]} is the best row on both {best[0][1]} and '
            f'{best[1][1]}{mean_of}.'
        ]
    else:
        out = [
            f'Best on {best[0][1]}: {best[0][0]}; best on {best[1][1]}: '
            f'{best[1][0]}{mean_of}.'
        ]
    base = baseline
    others = [n for n in by_model if n not in (base, teacher)]
    student = next((n for n in others if n.startswith(student)),
                   others[0] if others else None)
    if base not in by_model or student is None:
        return out
    diffs = []
    for short, key, where, _ in _SPLITS:
        diffs.append(
            _mean_std(values(student, key))[0] -
            _mean_std(values(base, key))[0])
    out.append(f'{student} {_verb(diffs[0], base, "AP_S")} on short videos '
               f'and {_verb(diffs[1], "it", "AP_L")} on long videos'
               f'{mean_of}.')
    stds = [_mean_std(values(base, key))[1] for _, key, _, _ in _SPLITS]
    if None in stds:
        out.append('With one seed the seed-to-seed spread is unknown, so '
                   'these differences may be noise: run --seeds 0 1 2 to '
                   'measure it.')
        return out
    seeds = ', '.join(str(r['seed']) for r in by_model[base])
    verdicts = [
        'beyond' if round(abs(d), 3) > 0 and abs(d) > 2 * s else 'within'
        for d, s in zip(diffs, stds)
    ]
    out.append(f'Over seeds {seeds} the baseline\'s AP_S varies by '
               f'{stds[0]:.3f} and its AP_L by {stds[1]:.3f} (sample '
               f'standard deviation), so the AP_S difference is '
               f'{verdicts[0]} twice that spread and the AP_L difference '
               f'is {verdicts[1]} it.')
    return out


def free_path(path: str) -> str:
    """``path``, or a timestamped name beside it when it exists (the
    pipeline never overwrites a file)."""
    if not osp.exists(path):
        return path
    root, ext = osp.splitext(path)
    stamp = time.strftime('%Y%m%d_%H%M%S')
    candidate, n = f'{root}_{stamp}{ext}', 1
    while osp.exists(candidate):
        candidate, n = f'{root}_{stamp}_{n}{ext}', n + 1
    return candidate


def write_new_file(path: str, text: str) -> None:
    """Write ``text`` to a new file (refuses to overwrite one)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'x') as f:
        f.write(text)


def merge_rows(old: List[Dict], new: List[Dict]) -> List[Dict]:
    """Benchmark rows of an earlier run (``old``) with this run's: a row of
    the same model, seed and evaluation sizes is replaced in place, the
    others are kept, new ones appended (``toy_pipeline --merge-json``: the
    ablation rows join the main rows' file, e.g. docs/results/
    toy_ookd.json, without retyping it)."""

    def key(row: Dict) -> Tuple:
        return (row.get('model'), row.get('seed'), row.get('num_val'),
                row.get('num_long_val'))

    fresh = {key(row): row for row in new}
    merged = [fresh.pop(key(row), row) for row in old]
    return merged + [row for row in new if key(row) in fresh]


def write_json_rows(path: str,
                    rows: List[Dict],
                    merge: bool = False,
                    force: bool = False) -> None:
    """Write benchmark rows to ``path``; with ``merge`` into the rows an
    existing file holds (:func:`merge_rows`), replaced through a temporary
    file so the old rows are never lost half-way; else a new file (or
    ``force``)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if merge and osp.isfile(path):
        with open(path) as f:
            rows = merge_rows(json.load(f), rows)
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'x') as f:
            json.dump(rows, f, indent=1)
        os.replace(tmp, path)
        return
    with open(path, 'w' if force else 'x') as f:
        json.dump(rows, f, indent=1)
