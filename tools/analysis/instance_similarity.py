# Copyright (c) mmookd contributors. All rights reserved.
"""The paper's Fig. 6 (OOKD Sec. 4.3): cosine similarity of the same
instance's embeddings in different frames, per model (e.g. baseline vs
OOKD student), as a histogram PNG and its mean, per split; and, with
``--bank``, the knowledge's quality: how often the nearest bank entry of a
student embedding is its own instance's.

    python tools/analysis/instance_similarity.py configs/toy/idol_...py \\
        --checkpoints baseline.pth student.pth --names baseline OOKD \\
        --splits train long_val --bank bank.pth --out-dir work_dirs/fig6

Files in ``--out-dir`` (``instance_similarity.json`` and one PNG per split)
are never overwritten unless ``--force`` is given.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
import mmookd  # noqa: E402,F401
from mmookd.utils import cli  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the online model (IDOL) config')
    parser.add_argument('--checkpoints', nargs='+', required=True)
    parser.add_argument('--names', nargs='+', help='one per checkpoint')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'long_val'],
        help="'train' (the training set, whole videos) and / or test splits "
        'named by their annotation file (toyvis_long_val.json -> long_val)')
    parser.add_argument('--bank', help='a knowledge bank of the train split')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite the files of an earlier run in --out-dir')
    parser.add_argument('--data-root', help='instead of the config\'s')
    parser.add_argument('--max-videos', type=int, help='per split')
    parser.add_argument(
        '--pairs-per-instance',
        type=int,
        default=50,
        help='pairs drawn per instance (seeded)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int)
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.names and len(args.names) != len(args.checkpoints):
        parser.error('give one --names entry per checkpoint')
    return args


def split_datasets(cfg, splits: List[str]) -> Dict[str, dict]:
    """Dataset configs (test mode, whole videos) of the named splits."""
    from mmookd.apis.knowledge_bank import bank_dataset_cfg
    found = {}
    test = cfg.test_dataloader.dataset.to_dict()
    children = test.get('datasets', [test])
    for child in children:
        stem = osp.splitext(osp.basename(child['ann_file']))[0]
        name = stem.split('_', 1)[1] if '_' in stem else stem
        found[name] = child
    if 'train' in splits:
        found['train'] = bank_dataset_cfg(cfg)
    missing = [s for s in splits if s not in found]
    if missing:
        raise ValueError(f'unknown split(s) {missing}; the config has '
                         f'{sorted(found)}')
    return {s: found[s] for s in splits}


def png_path(out_dir: str, split: str) -> str:
    """The histogram of one split."""
    return osp.join(out_dir, f'instance_similarity_{split}.png')


def save_histogram(sims: Dict[str, torch.Tensor], title: str,
                   path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in sims.items():
        mean = float(values.mean()) if values.numel() else float('nan')
        ax.hist(
            values.numpy(),
            bins=40,
            range=(-1, 1),
            alpha=0.5,
            density=True,
            label=f'{name} (mean {mean:.3f})')
    ax.set_xlabel('cosine similarity, same instance, different frames')
    ax.set_ylabel('density')
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> dict:
    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmookd.evaluation.functional import (
        bank_retrieval,
        instance_embeddings,
        same_instance_similarities,
    )
    from mmookd.models.utils import KnowledgeBank
    from mmookd.utils import set_data_root
    args = parse_args(argv)
    # every input and output is checked before a model or dataset is built
    inputs = [(args.config, 'config file'), (args.bank, 'knowledge bank')]
    inputs += [(c, 'checkpoint') for c in args.checkpoints]
    for path, what in inputs:
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmdet')
    cfg = Config.fromfile(args.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    model_cfg = cfg.model.to_dict()
    if model_cfg.get('type') == 'OOKD':  # the student is an IDOL
        model_cfg['type'] = 'IDOL'
        for key in ('teacher', 'assigner', 'loss_kd', 'association',
                    'kd_frames', 'extra_distill', 'knowledge_bank'):
            model_cfg.pop(key, None)
    names = args.names or [
        osp.splitext(osp.basename(c))[0] for c in args.checkpoints
    ]
    split_cfgs = split_datasets(cfg, args.splits)
    out_json = osp.join(args.out_dir, 'instance_similarity.json')
    for path in [out_json] + [png_path(args.out_dir, s) for s in split_cfgs]:
        cli.check_new_file(path, 'output', args.force)
    # deep copy: mmdet's DETR builders edit nested configs in place; the
    # first model is built before the data, so a bad model config is
    # reported at once
    model = MODELS.build(copy.deepcopy(model_cfg))
    bank = KnowledgeBank.load(args.bank) if args.bank else None
    datasets = {s: DATASETS.build(c) for s, c in split_cfgs.items()}
    os.makedirs(args.out_dir, exist_ok=True)
    report: dict = {}
    sims: Dict[str, Dict[str, torch.Tensor]] = {s: {} for s in datasets}
    for k, (name, ckpt) in enumerate(zip(names, args.checkpoints)):
        if k:
            model = MODELS.build(copy.deepcopy(model_cfg))
        load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
        for split, dataset in datasets.items():
            embeds = instance_embeddings(model, dataset, args.max_videos)
            values = same_instance_similarities(embeds,
                                                args.pairs_per_instance,
                                                args.seed)
            sims[split][name] = values
            entry = dict(
                mean=float(values.mean()) if values.numel() else None,
                num_pairs=int(values.numel()),
                num_instances=len(embeds))
            if bank is not None and split == 'train':
                entry['bank'] = bank_retrieval(
                    embeds,
                    list(
                        zip(bank.video_ids.tolist(),
                            bank.instance_ids.tolist())), bank.embeds)
            report.setdefault(split, {})[name] = entry
            print(f'[{split}] {name}: mean cosine {entry["mean"]} over '
                  f'{entry["num_pairs"]} pairs' +
                  (f', bank top-1 {entry["bank"]}' if 'bank' in entry else ''))
    for split, per_model in sims.items():
        path = png_path(args.out_dir, split)
        save_histogram(per_model, f'same-instance similarity ({split})', path)
        report[split]['png'] = path
    with open(out_json, 'w') as f:
        json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
