# Copyright (c) mmookd contributors. All rights reserved.
"""The main job: the whole OOKD pipeline on ToyVIS, on CPU.

1. generate ToyVIS (the embedded synthetic YouTube-VIS-format dataset);
2. **baseline**: the tiny IDOL, from the shipped toy pre-training
   (``checkpoints/toy/``, the stand-in for IDOL's COCO pre-training),
   fine-tuned on ToyVIS without distillation;
3. **teacher**: the offline aggregator trained on top of that IDOL, frozen
   (paper Sec. 3.2);
4. **student**: OOKD, fine-tuned from the same pre-training on the same
   samples with QFA + cosine KD from the teacher and Minor-Paste (Sec.
   3.3-3.4);
5. evaluate all three on val (short) and long_val (long), YouTube-VIS 2022
   style, and print the table (AP, AP_S, AP_L and TrackEval's HOTA / IDF1;
   every column in ``results.md`` of the work dir) with three sentences
   computed from it: which row is best where, by how much OOKD differs
   from the baseline, whether that is beyond the seeds' spread;
6. draw ``strip_long_val.png`` (a long_val video: ground truth, baseline,
   OOKD; a track has the colour of the instance it matches) and
   ``student_long_val.mp4`` in the work dir (``--no-pictures``: not).

The console has one line per stage (training, evaluation) with a progress
bar; everything a run prints (mmengine's environment, config and logs,
warnings) goes to ``toy_pipeline.log`` in its work dir (``--verbose``:
to the console, as before).

``--ablation`` adds the paper's Tables 4-5 rows in miniature (KD without
QFA, KD + QFA, Minor-Paste only), ``--companion`` the OOKD run plus each
companion distillation term (docs/companion_losses.md), ``--tc`` paper A's
temporal consistency next to AP (flow from OpenCV's DIS: no weights
needed), and ``--seeds`` repeats the fine-tuning runs (``--shared-teacher``:
every seed distils from the first seed's teacher; ``--teacher-checkpoint``:
from a teacher trained before). The offline knowledge bank is built once
after each teacher (the teacher over every whole training video) and the
QFA rows distil from it (``--bank``: its file; ``--online-teacher``: no
bank, the teacher runs on each training sample instead),
``--out-json`` writes the AP rows of a benchmark and ``--threads`` fixes
every run's thread count (same seed + threads = same numbers). Existing
data and
checkpoints are reused, never overwritten: a second run only evaluates
(``--retrain`` trains again into fresh, timestamped work dirs).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import mmookd  # noqa: E402,F401
import mmookd.utils.cli as cli  # noqa: E402
from mmookd.datasets.toyvis import generate_toyvis  # noqa: E402
from mmookd.utils import load_tool, results_table, set_data_root  # noqa: E402
from mmookd.utils.stage_console import StageConsole, StageProgressHook  # noqa: E402

TOY = 'configs/toy/'
PRETRAIN_CKPT = 'checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth'
PRETRAIN_CFG = TOY + 'idol_r18-tiny_1xb2-8k_toyvis-pretrain.py'
TEACHER_CFG = TOY + 'vita-teacher_r18-tiny_1xb2-toyvis.py'
# key -> (row name, config); 'teacher' and 'student' need the baseline /
# teacher checkpoints of this run.
RUNS = {
    'baseline': ('IDOL (no KD)', TOY + 'ookd_r18-tiny_1xb2-toyvis_no-kd.py'),
    'teacher': ('offline teacher', TEACHER_CFG),
    'student':
    ('OOKD (KD + QFA + Minor-Paste)', TOY + 'ookd_r18-tiny_1xb2-toyvis.py'),
    'kd-no-qfa':
    ('KD without QFA', TOY + 'ookd_r18-tiny_1xb2-toyvis_kd-no-qfa.py'),
    'kd-qfa': ('KD + QFA', TOY + 'ookd_r18-tiny_1xb2-toyvis_kd-qfa.py'),
    'minor-paste': ('Minor-Paste only',
                    TOY + 'ookd_r18-tiny_1xb2-toyvis_minor-paste-only.py'),
}
COMPANION = TOY + 'companion/ookd-{}_r18-tiny_1xb2-toyvis.py'
# terms that need no flow network weights (RAFT's cannot be had here)
COMPANION_RUNS = {
    'tl-box': '+ temporal loss (box flow)',
    'tl-dis': '+ temporal loss (DIS flow)',
    'track-consistency': '+ instance temporal consistency',
    'pixel-kd': '+ pixel-wise KL',
    'pairwise': '+ pair-wise similarity',
    'pf': '+ cross-frame affinity',
    'cka': '+ CKA attention',
    'dist': '+ inter/intra-object relation',
}
RUNS.update({
    key: (name, COMPANION.format(key))
    for key, name in COMPANION_RUNS.items()
})
MAIN_RUNS = ['baseline', 'teacher', 'student']
ABLATION_RUNS = ['kd-no-qfa', 'kd-qfa', 'minor-paste']
# the rows each run needs first (their checkpoints)
NEEDS = {'baseline': [], 'teacher': ['baseline']}
TC_EVALUATOR = dict(
    type='TemporalConsistencyMetric',
    flow=dict(type='OpenCVFlowProvider', method='dis', preset='medium'),
    occlusion='fb')
# each run's console output, in its work dir
LOG_NAME = 'toy_pipeline.log'
TABLE_KEYS = results_table.TABLE_KEYS
CONSOLE_KEYS = results_table.CONSOLE_KEYS
format_table = results_table.format_table
split_sizes = results_table.split_sizes
free_path = results_table.free_path
write_new_file = results_table.write_new_file


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--data-root',
        default='data/toyvis_main',
        help='ToyVIS root of this job (default: the generator\'s train '
        'split with 24 val / 12 long_val videos, enough to rank the rows; '
        'data/toyvis, the configs\' root, has the generator\'s 8 / 6)')
    parser.add_argument('--work-dir', default='work_dirs/toy_pipeline')
    parser.add_argument(
        '--num-val',
        type=int,
        help='ToyVIS val videos (default: 24 for a new data root, what an '
        'existing one has otherwise; generator default: 8); the train '
        'split does not change, a larger val split keeps the first videos. '
        'Use a data root of its own: an existing dataset is never replaced')
    parser.add_argument(
        '--num-long-val',
        type=int,
        help='ToyVIS long_val videos (default: 12 for a new data root, what '
        'an existing one has otherwise; generator default: 6)')
    parser.add_argument(
        '--iters',
        type=int,
        help='fine-tuning iterations of the IDOL / OOKD runs (config: 600)')
    parser.add_argument(
        '--teacher-iters',
        type=int,
        help='teacher training iterations (config: 300)')
    parser.add_argument(
        '--ablation',
        action='store_true',
        help='also run KD without QFA, KD + QFA and Minor-Paste only')
    parser.add_argument(
        '--companion',
        action='store_true',
        help='also run OOKD + each companion term (flow-free / box flow)')
    parser.add_argument(
        '--rows',
        nargs='+',
        choices=sorted(RUNS),
        help='run exactly these rows (and the ones they need) instead of '
        'the main rows + --ablation / --companion')
    parser.add_argument(
        '--tc',
        action='store_true',
        help='also report temporal consistency (TC, paper A) of every row, '
        'flow from OpenCV DIS')
    parser.add_argument(
        '--shared-teacher',
        action='store_true',
        help='train the teacher once (first seed) and distil every seed '
        'from it, as from a fixed pre-trained teacher')
    parser.add_argument(
        '--teacher-checkpoint',
        help='distil every seed from this trained teacher checkpoint '
        '(neither trained nor evaluated again; implies --shared-teacher)')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0],
        help='seeds of the baseline / student / ablation runs')
    parser.add_argument(
        '--pretrained',
        default=PRETRAIN_CKPT,
        help='initial IDOL weights; "none" trains from scratch')
    parser.add_argument(
        '--retrain',
        action='store_true',
        help='train again even if a final checkpoint exists')
    parser.add_argument(
        '--out', help='also write the metrics of every run to this JSON')
    parser.add_argument(
        '--force', action='store_true', help='overwrite --out if it exists')
    parser.add_argument(
        '--bank',
        help='knowledge bank file (default: banks/ in the work dir, one per '
        'teacher checkpoint): built once after the teacher (the teacher '
        'over every whole training video, paper Sec. 3.2), the distilled '
        'rows then read it instead of running the teacher (their own work '
        'dirs, *_bank); an existing file is reused if it matches the '
        'teacher and data, refused otherwise')
    parser.add_argument(
        '--online-teacher',
        action='store_true',
        help='no knowledge bank: the distilled rows run the frozen teacher '
        'on each training sample\'s frames')
    parser.add_argument(
        '--out-json',
        help='also write rows {model, seed, AP, AP_S, AP_L, num_val, '
        'num_long_val} to this JSON (e.g. docs/results/toy_ookd.json)')
    parser.add_argument(
        '--merge-json',
        action='store_true',
        help='--out-json may exist: keep its rows, replacing those of the '
        'same model, seed and split sizes with this run\'s (e.g. add the '
        'ablation rows to the main rows\' file)')
    parser.add_argument(
        '--threads',
        type=int,
        help='CPU threads of every run (configs: 2; same seed + same '
        'threads = same numbers on one machine)')
    parser.add_argument(
        '--no-pictures',
        action='store_true',
        help='do not draw the long-video strip (ground truth, baseline, '
        'OOKD) and the student video')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='print the full mmengine console of every run (environment, '
        'config, every logged iteration) instead of one line per stage')
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def build_cfg(config: str, args: argparse.Namespace, work_dir: str,
              seed: int) -> Config:
    """The config of one run, pointed at this job's data and work dir."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = work_dir
    set_data_root(cfg, args.data_root)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == 'ReproducibilityHook' and getattr(
                args, 'threads', None):
            hook.num_threads = args.threads
    iters = args.teacher_iters if config == TEACHER_CFG else args.iters
    if iters is not None:
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters + 1
        cfg.default_hooks.checkpoint.interval = iters
        for sched in cfg.param_scheduler:
            if sched.type == 'MultiStepLR':
                sched.end = iters
                sched.milestones = [int(iters * 0.8)]
    if 'load_from' in cfg and config != TEACHER_CFG:
        pretrained = args.pretrained
        cfg.load_from = None if pretrained.lower() == 'none' else osp.join(
            ROOT, pretrained) if not osp.isabs(pretrained) else pretrained
        if cfg.load_from and not osp.isfile(cfg.load_from):
            raise FileNotFoundError(
                f'toy pre-training checkpoint not found: {cfg.load_from} '
                f'(make it with {PRETRAIN_CFG}, or pass --pretrained none)')
    return cfg


def uses_bank(config: str, args: argparse.Namespace) -> bool:
    """A distilled row (cosine KD, no extra term that reads the offline
    teacher outputs) run without ``--online-teacher``."""
    if getattr(args, 'online_teacher', False) or config == TEACHER_CFG:
        return False
    model = Config.fromfile(osp.join(ROOT, config)).model
    extra = model.get('extra_distill') or []
    offline = any(
        term.get('inputs', {}).get('teacher', 'offline') == 'offline'
        for term in extra)
    return model.get('loss_kd') is not None and not offline and model.get(
        'association', 'qfa') == 'qfa'


def knowledge_bank_stage(args: argparse.Namespace,
                         teacher_ckpt: str,
                         console: Optional[StageConsole] = None) -> dict:
    """Build the knowledge bank from the trained teacher once (or reuse a
    matching one) and return the distiller's ``knowledge_bank`` setting."""
    from mmookd.apis import build_knowledge_bank
    from mmookd.models.utils import KnowledgeBank
    console = console or StageConsole(verbose=True)
    cfg = build_cfg(TEACHER_CFG, args, args.work_dir, 0)
    train = cfg.train_dataloader.dataset
    path = bank_path(args, teacher_ckpt)
    setting = dict(
        path=path,
        teacher_config=osp.join(ROOT, TEACHER_CFG),
        teacher_checkpoint=teacher_ckpt,
        ann_file=osp.join(train.data_root, train.ann_file))
    if osp.isfile(path):
        KnowledgeBank.load(path).check(setting['teacher_config'], teacher_ckpt,
                                       setting['ann_file'])
        console.print(f'knowledge bank: reusing {path}')
    else:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        cfg.model.online_checkpoint = None
        log = osp.join(args.work_dir, LOG_NAME)
        with console.stage(f'knowledge bank: building {path} in', log):
            build_knowledge_bank(cfg, teacher_ckpt, out=path)
    return setting


def split_options(data_root: str, num_val: Optional[int],
                  num_long_val: Optional[int]) -> Dict[str, int]:
    """The evaluation split sizes to generate ToyVIS with: the given ones;
    for one not given, what an existing dataset at ``data_root`` has, else
    24 val / 12 long_val videos (enough to rank the main job's rows)."""
    from mmookd.datasets.toyvis import TOYVIS_META_FILE
    meta_file = osp.join(data_root, TOYVIS_META_FILE)
    existing = {}
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            existing = json.load(f).get('options', {})
    sizes = {}
    for key, given, default in (('num_val', num_val, 24), ('num_long_val',
                                                           num_long_val, 12)):
        sizes[key] = given if given is not None else existing.get(key, default)
    return sizes


def bank_path(args: argparse.Namespace, teacher_ckpt: str) -> str:
    """``--bank``, or by default one bank per teacher checkpoint under
    ``banks/`` of the work dir (named after the teacher's run and
    iteration, so every seed's teacher has its own)."""
    if getattr(args, 'bank', None):
        return args.bank
    run_name = osp.basename(osp.dirname(osp.abspath(teacher_ckpt)))
    stem = osp.splitext(osp.basename(teacher_ckpt))[0]
    return osp.join(args.work_dir, 'banks', f'{run_name}_{stem}.pth')


def json_rows(rows: List[Dict], args: argparse.Namespace) -> List[Dict]:
    """``--out-json`` rows: model (the row's key, ``student`` as
    ``ookd``), its table name, seed, AP, AP_S, AP_L and the sizes of the
    evaluation splits."""
    sizes = split_sizes(args.data_root)
    out = []
    for row in rows:
        m = row['metrics']
        key = row.get('key')
        out.append(
            dict(
                model={'student': 'ookd'}.get(key, key)
                if key else row['name'],
                name=row['name'],
                seed=row['seed'],
                **{
                    k: m.get(f'youtube_vis/{v}')
                    for k, v in TABLE_KEYS[:3]
                },
                num_val=sizes['val'],
                num_long_val=sizes['long_val']))
    return out


def final_ckpt(cfg: Config) -> str:
    return osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')


def run(key: str,
        args: argparse.Namespace,
        seed: int,
        deps: Dict[str, str],
        console: Optional[StageConsole] = None) -> Dict:
    """Train (unless done before) and test one row; returns its metrics and
    the path of its checkpoint. Each of the two stages is one line on the
    ``console``; their output goes to ``LOG_NAME`` in the run's work dir."""
    console = console or StageConsole(verbose=True)
    name, config = RUNS[key]
    stem = osp.splitext(osp.basename(config))[0]
    bank = uses_bank(config, args)
    suffix = '_bank' if bank else ''
    work_dir = osp.join(args.work_dir, f'{stem}{suffix}_seed{seed}')
    cfg = build_cfg(config, args, work_dir, seed)
    if key == 'teacher':
        cfg.model.online_checkpoint = deps['baseline']
    elif bank:
        cfg.model.knowledge_bank = knowledge_bank_stage(
            args, deps['teacher'], console)
        name += ' [bank]'
    elif cfg.model.get('loss_kd') is not None:
        cfg.model.teacher.checkpoint = deps['teacher']
    ckpt = final_ckpt(cfg)
    label = f'{name}, seed {seed}'
    t0 = time.time()
    trained = False
    if osp.isfile(ckpt) and not args.retrain:
        console.print(f'{label}: reusing {ckpt}')
    else:
        if osp.isfile(ckpt):  # --retrain: keep the old run, use a new dir
            cfg.work_dir = f'{work_dir}_{time.strftime("%Y%m%d_%H%M%S")}'
            ckpt = final_ckpt(cfg)
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        with console.stage(f'{label}: train', osp.join(cfg.work_dir,
                                                       LOG_NAME)) as stage:
            print(f'[{name}] training {config} -> {cfg.work_dir}')
            runner = Runner.from_cfg(cfg)
            runner.register_hook(StageProgressHook(stage), 'VERY_LOW')
            runner.train()
        trained = True
    train_s = time.time() - t0
    test_cfg = build_cfg(config, args, cfg.work_dir, seed)
    if key == 'teacher':
        test_cfg.model.online_checkpoint = None  # all in the teacher ckpt
    test_cfg.load_from = ckpt
    if args.tc:
        ytvis = test_cfg.test_evaluator
        test_cfg.test_evaluator = [
            ytvis, dict(TC_EVALUATOR, ann_file=ytvis.ann_file)
        ]
    t0 = time.time()
    with console.stage(f'{label}: test', osp.join(cfg.work_dir,
                                                  LOG_NAME)) as stage:
        runner = Runner.from_cfg(test_cfg)
        runner.register_hook(StageProgressHook(stage), 'VERY_LOW')
        metrics = runner.test()
    return dict(
        key=key,
        name=name,
        seed=seed,
        checkpoint=ckpt,
        config=config,
        trained=trained,
        metrics=metrics,
        train_s=train_s,
        test_s=time.time() - t0)


def needs(key: str) -> List[str]:
    """Rows whose checkpoints ``key`` needs: the teacher needs the
    baseline, every distilled row the teacher, the others nothing."""
    if key in NEEDS:
        return NEEDS[key]
    cfg = Config.fromfile(osp.join(ROOT, RUNS[key][1]))
    return ['teacher'] if cfg.model.get('loss_kd') is not None else []


def run_order(keys: List[str], done: Sequence[str] = ()) -> List[str]:
    """``keys`` with what they need first, each once; ``done`` rows (a
    shared teacher) are neither run nor expanded."""
    order: List[str] = []

    def visit(key: str) -> None:
        if key in done:
            return
        for dep in needs(key):
            visit(dep)
        if key not in order:
            order.append(key)

    for key in keys:
        visit(key)
    return order


def reading(rows: List[Dict], sizes: Dict[str, int]) -> List[str]:
    """The reading sentences of this job's rows (:func:`mmookd.utils.
    results_table.reading` with the main rows' names)."""
    return results_table.reading(
        rows,
        sizes,
        baseline=RUNS['baseline'][0],
        teacher=RUNS['teacher'][0],
        student=RUNS['student'][0])


def main(args: Optional[argparse.Namespace] = None) -> List[Dict]:
    args = args or parse_args()
    # before any work: the file is written after the last run
    cli.check_new_file(args.out, '--out', getattr(args, 'force', False))
    merge = getattr(args, 'merge_json', False)
    cli.check_new_file(
        getattr(args, 'out_json', None), '--out-json',
        getattr(args, 'force', False) or merge)
    if merge and not getattr(args, 'out_json', None):
        raise ValueError('--merge-json needs --out-json')
    if args.teacher_checkpoint and not osp.isfile(args.teacher_checkpoint):
        raise FileNotFoundError(
            f'--teacher-checkpoint: no such file {args.teacher_checkpoint}')
    t0 = time.time()
    sizes = split_options(args.data_root, args.num_val, args.num_long_val)
    console = StageConsole(verbose=getattr(args, 'verbose', False))
    paths = generate_toyvis(args.data_root, **sizes)
    console.print(f'ToyVIS ready in {args.data_root} '
                  f'({time.time() - t0:.1f} s): {sorted(paths)}')
    if not console.verbose:
        console.print(f'each run logs to {LOG_NAME} in its work dir under '
                      f'{args.work_dir} (--verbose: everything here)')
    rows = []
    wanted = args.rows or (MAIN_RUNS +
                           (ABLATION_RUNS if args.ablation else []) +
                           (list(COMPANION_RUNS) if args.companion else []))
    shared: Dict[str, str] = {}
    if args.teacher_checkpoint:
        shared = {'teacher': args.teacher_checkpoint}
    for seed in args.seeds:
        deps: Dict[str, str] = dict(shared)
        for key in run_order(wanted, done=list(shared)):
            row = run(key, args, seed, deps, console)
            deps[key] = row['checkpoint']
            rows.append(row)
        if args.shared_teacher and not shared:
            shared = {'teacher': deps['teacher']} if 'teacher' in deps else {}
    if not getattr(args, 'no_pictures', False):
        pictures(rows, args, console)
    console.print(f'total wall time {time.time() - t0:.0f} s')
    report(rows, args, console)  # the console ends with the table's reading
    if args.out:
        results_table.write_json_rows(
            args.out, rows, force=getattr(args, 'force', False))
    if getattr(args, 'out_json', None):
        results_table.write_json_rows(
            args.out_json,
            json_rows(rows, args),
            merge=merge,
            force=getattr(args, 'force', False))
    return rows


def report(rows: List[Dict], args: argparse.Namespace,
           console: StageConsole) -> str:
    """The narrow table and the reading sentences on the console, the full
    table in a markdown file of the work dir (named on the console);
    returns that file's path."""
    tc = getattr(args, 'tc', False)
    sentences = reading(rows, split_sizes(args.data_root))
    title = (
        'ToyVIS results (AP = YouTube-VIS 2022 style mean of AP_S on '
        'val and AP_L on long_val; HOTA / AssA / IDF1: TrackEval; the teacher '
        'is offline, the others online)')
    path = free_path(osp.join(args.work_dir, 'results.md'))
    write_new_file(
        path,
        '\n\n'.join([title, format_table(rows, tc), ' '.join(sentences)]) +
        '\n')
    console.print(f'all columns (AP50, AR@10, AssA_S, IDF1_S): {path}')
    console.print()
    console.print(title)
    console.print(format_table(rows, tc, CONSOLE_KEYS))
    console.print()
    for sentence in sentences:
        console.print(sentence)
    return path


def _track_strip():
    """``tools/analysis/track_strip.py`` as a module."""
    return load_tool(
        osp.join(ROOT, 'tools/analysis/track_strip.py'), 'mmookd_track_strip')


def pictures(rows: List[Dict], args: argparse.Namespace,
             console: StageConsole) -> Optional[Dict[str, str]]:
    """Next to the table: a PNG strip of the long_val video with the most
    instances (ground truth, baseline, OOKD student; a predicted track has
    the colour of the ground-truth instance it matches) and an mp4 of the
    student on that video, both of the first seed, named on the console.

    Existing pictures are kept: reused when no row was trained in this
    run, else the new ones get timestamped names beside them."""
    base_name, student_name = RUNS['baseline'][0], RUNS['student'][0]
    seed = rows[0]['seed'] if rows else None
    base = next(
        (r for r in rows if r['name'] == base_name and r['seed'] == seed),
        None)
    student = next(
        (r for r in rows
         if r['name'].startswith(student_name) and r['seed'] == seed), None)
    if base is None or student is None:
        return None
    out = osp.join(args.work_dir, 'strip_long_val.png')
    out_video = osp.join(args.work_dir, 'student_long_val.mp4')
    trained = any(r.get('trained', True) for r in rows)
    if osp.isfile(out) and osp.isfile(out_video) and not trained:
        console.print(f'pictures: reusing {out} and {out_video}')
        return dict(out=out, out_video=out_video)
    out, out_video = free_path(out), free_path(out_video)
    strip = _track_strip()
    ann_file = osp.join(args.data_root, 'annotations', 'toyvis_long_val.json')
    video_id = strip.video_with_most_instances(ann_file)
    with console.stage(f'pictures: long_val video {video_id}',
                       osp.join(args.work_dir, LOG_NAME)) as stage:
        strip.make_strip(
            osp.join(ROOT, RUNS['baseline'][1]),
            [base['checkpoint'], student['checkpoint']],
            [base_name, student['name']],
            out,
            ann_file=ann_file,
            img_dir=osp.join(args.data_root, 'long_val', 'JPEGImages'),
            video_id=video_id,
            out_video=out_video,
            progress=stage.update)
    console.print(f'strip (ground truth, baseline, OOKD; a track has the '
                  f'colour of the instance it matches): {out}')
    console.print(f'OOKD student on that video: {out_video}')
    return dict(out=out, out_video=out_video)


if __name__ == '__main__':
    sys.exit(cli.run_cli(lambda argv: main(parse_args(argv))))
