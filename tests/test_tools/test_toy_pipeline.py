# Copyright (c) mmookd contributors. All rights reserved.
"""tools/toy_pipeline.py: which rows run in which order, what each row's
evaluation reports."""
import os
import os.path as osp
import sys
from types import SimpleNamespace

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import toy_pipeline  # noqa: E402


def test_every_row_has_a_config_and_the_rows_it_needs_come_first():
    for key, (_, config) in toy_pipeline.RUNS.items():
        assert osp.isfile(osp.join(ROOT, config)), (key, config)
    order = toy_pipeline.run_order(['cka', 'minor-paste', 'kd-no-qfa'])
    # CKA and KD without QFA distil from the teacher, which needs the
    # baseline; Minor-Paste only needs nothing
    assert order == ['baseline', 'teacher', 'cka', 'minor-paste', 'kd-no-qfa']
    assert toy_pipeline.run_order(['minor-paste']) == ['minor-paste']
    assert toy_pipeline.run_order(['student', 'baseline'
                                   ]) == ['baseline', 'teacher', 'student']


def test_a_shared_teacher_is_neither_trained_nor_expanded_again():
    order = toy_pipeline.run_order(['baseline', 'student', 'tl-box'],
                                   done=['teacher'])
    assert order == ['baseline', 'student', 'tl-box']


def test_table_reports_tc_columns_only_when_asked():
    row = dict(
        name='OOKD',
        seed=0,
        train_s=1.0,
        test_s=2.0,
        metrics={
            'youtube_vis/segm_mAP': 0.25,
            'tc/TC_short': 71.234,
            'tc/TC_long': 60.0
        })
    plain = toy_pipeline.format_table([row])
    assert 'TC_S' not in plain and '| OOKD | 0 | 0.250 |' in plain
    with_tc = toy_pipeline.format_table([row], tc=True)
    assert with_tc.splitlines()[0].endswith(
        '| TC_S | TC_L | train s | test s |')
    assert '| 71.2 | 60.0 | 1 | 2 |' in with_tc


@pytest.mark.parametrize('key', ['tl-box', 'cka', 'dist'])
def test_companion_rows_extend_the_ookd_student(key):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, toy_pipeline.RUNS[key][1]))
    assert cfg.model.type == 'OOKD' and cfg.model.loss_kd is not None
    assert len(cfg.model.extra_distill) >= 1


def test_a_missing_teacher_checkpoint_fails_before_any_work(
        tmp_path, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [
        'toy_pipeline.py', '--data-root',
        str(tmp_path / 'toyvis'), '--teacher-checkpoint',
        str(tmp_path / 'missing.pth')
    ])
    args = toy_pipeline.parse_args()
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        toy_pipeline.main(args)
    # the error comes before ToyVIS is generated or anything trains
    assert not (tmp_path / 'toyvis').exists()


def test_bank_rows_threads_and_json_rows(tiny_toyvis, tmp_path):
    args = toy_pipeline.parse_args([
        '--data-root', tiny_toyvis, '--bank',
        str(tmp_path / 'bank.pth'), '--threads', '1'
    ])
    student = toy_pipeline.RUNS['student'][1]
    # QFA + cosine KD rows read the bank; the ablation without QFA, the
    # baseline and terms that read the offline teacher outputs do not
    assert toy_pipeline.uses_bank(student, args)
    assert toy_pipeline.uses_bank(toy_pipeline.RUNS['kd-qfa'][1], args)
    for key in ('kd-no-qfa', 'baseline', 'teacher', 'minor-paste'):
        assert not toy_pipeline.uses_bank(toy_pipeline.RUNS[key][1], args)
    cfg = toy_pipeline.build_cfg(student, args, str(tmp_path / 'w'), 3)
    assert cfg.randomness == dict(seed=3, deterministic=True)
    assert cfg.custom_hooks[0].num_threads == 1
    row = dict(
        name='OOKD',
        seed=3,
        metrics={
            'youtube_vis/segm_mAP': 0.2,
            'youtube_vis/short/segm_mAP': 0.3,
            'youtube_vis/long/segm_mAP': 0.1
        })
    assert toy_pipeline.json_rows([dict(row, key='student')],
                                  args)[0]['model'] == 'ookd'
    assert toy_pipeline.json_rows([row], args) == [
        dict(
            model='OOKD',
            name='OOKD',
            seed=3,
            AP=0.2,
            AP_S=0.3,
            AP_L=0.1,
            num_val=2,
            num_long_val=1)
    ]


def test_merge_json_needs_out_json_and_accepts_an_existing_one(tmp_path):
    with pytest.raises(ValueError, match='--merge-json needs --out-json'):
        toy_pipeline.main(toy_pipeline.parse_args(['--merge-json']))
    out = tmp_path / 'rows.json'
    out.write_text('[]')
    args = toy_pipeline.parse_args([
        '--out-json',
        str(out), '--teacher-checkpoint',
        str(tmp_path / 'nope.pth')
    ])
    with pytest.raises(FileExistsError, match='--out-json'):
        toy_pipeline.main(args)
    # with --merge-json the existing file is no reason to stop (the run
    # stops at the next check, before any work)
    args.merge_json = True
    with pytest.raises(FileNotFoundError, match='--teacher-checkpoint'):
        toy_pipeline.main(args)
    assert out.read_text() == '[]'


def test_main_job_defaults_bank_and_evaluation_sizes(tiny_toyvis, tmp_path):
    # the bank is the default: one per teacher checkpoint in the work dir
    args = toy_pipeline.parse_args(['--work-dir', str(tmp_path / 'w')])
    student = toy_pipeline.RUNS['student'][1]
    assert toy_pipeline.uses_bank(student, args)
    ckpt = str(tmp_path / 'w' / 'teacher_seed1' / 'iter_600.pth')
    assert toy_pipeline.bank_path(args, ckpt) == str(
        tmp_path / 'w' / 'banks' / 'teacher_seed1_iter_600.pth')
    online = toy_pipeline.parse_args(['--online-teacher'])
    assert not toy_pipeline.uses_bank(student, online)
    # a new data root gets 24 / 12 evaluation videos, an existing one keeps
    # its own, explicit sizes win
    new_root = str(tmp_path / 'new')
    assert toy_pipeline.split_options(new_root, None, None) == dict(
        num_val=24, num_long_val=12)
    assert toy_pipeline.split_options(tiny_toyvis, None, None) == dict(
        num_val=2, num_long_val=1)
    assert toy_pipeline.split_options(tiny_toyvis, 5, None) == dict(
        num_val=5, num_long_val=1)


def _row(name, seed, ap_s, ap_l):
    return dict(
        name=name,
        seed=seed,
        train_s=1.0,
        test_s=1.0,
        metrics={
            'youtube_vis/segm_mAP': (ap_s + ap_l) / 2,
            'youtube_vis/short/segm_mAP': ap_s,
            'youtube_vis/long/segm_mAP': ap_l
        })


BASE, TEACHER, OOKD = (
    toy_pipeline.RUNS[k][0] for k in ('baseline', 'teacher', 'student'))
SIZES = dict(val=8, long_val=6)


def test_reading_one_seed_wins_and_loses_and_the_spread_is_unknown():
    rows = [
        _row(BASE, 0, 0.254, 0.051),
        _row(TEACHER, 0, 0.160, 0.000),
        _row(OOKD, 0, 0.250, 0.069)
    ]
    best, diff, spread = toy_pipeline.reading(rows, SIZES)
    assert best == ('Best on short videos (val, 8 videos, AP_S 0.254): '
                    f'{BASE}; best on long videos (long_val, 6 videos, '
                    f'AP_L 0.069): {OOKD}.')
    assert diff == (f'{OOKD} trails {BASE} by 0.004 AP_S on short videos '
                    'and beats it by 0.018 AP_L on long videos.')
    assert 'spread is unknown' in spread and '--seeds 0 1 2' in spread
    # one row only: what it scored, nothing to compare
    assert toy_pipeline.reading(rows[:1], SIZES) == [
        f'Only {BASE} ran: short videos (val, 8 videos, AP_S 0.254) and '
        'long videos (long_val, 6 videos, AP_L 0.051).'
    ]
    # one row best on both splits
    rows[2] = _row(OOKD, 0, 0.300, 0.069)
    assert toy_pipeline.reading(
        rows,
        SIZES)[0].startswith(f'{OOKD} is the best row on both short videos')


def test_reading_several_seeds_within_and_beyond_the_baseline_spread():
    # baseline std: 0.004 on both splits; OOKD +0.004 AP_S (within twice
    # that), +0.019 AP_L (beyond)
    rows = [
        _row(BASE, s, v, v - 0.19) for s, v in enumerate((0.228, 0.232, 0.236))
    ]
    rows += [
        _row(OOKD, s, v + 0.004, v - 0.171)
        for s, v in enumerate((0.228, 0.232, 0.236))
    ]
    best, diff, spread = toy_pipeline.reading(rows, SIZES)
    assert best.endswith('(mean over seeds).')
    assert diff == (f'{OOKD} beats {BASE} by 0.004 AP_S on short videos and '
                    'beats it by 0.019 AP_L on long videos (mean over '
                    'seeds).')
    assert spread == ("Over seeds 0, 1, 2 the baseline's AP_S varies by "
                      '0.004 and its AP_L by 0.004 (sample standard '
                      'deviation), so the AP_S difference is within twice '
                      'that spread and the AP_L difference is beyond it.')
    # a loss beyond the spread reads as such; a tie is within it
    rows = [_row(BASE, s, v, 0.05) for s, v in enumerate((0.23, 0.231))]
    rows += [_row(OOKD, s, 0.2, 0.05) for s in (0, 1)]
    _, diff, spread = toy_pipeline.reading(rows, SIZES)
    assert 'trails' in diff and 'ties it on AP_L' in diff
    assert 'AP_S difference is beyond' in spread
    assert 'AP_L difference is within' in spread


def test_console_is_short_and_the_runs_talk_to_their_logs(
        tiny_toyvis, tmp_path, monkeypatch, capsys):
    """The main job's console with stand-in runs that print, log through
    mmengine and warn like Runner does: one line per stage, the narrow
    table, the reading, the full table in a new 0644 file."""
    import warnings

    from mmengine.logging import MMLogger

    def fake_run(key, args, seed, deps, console):
        name = toy_pipeline.RUNS[key][0]
        log = str(tmp_path / 'work' / key / toy_pipeline.LOG_NAME)
        with console.stage(f'{name}, seed {seed}: train', log) as stage:
            logger = MMLogger.get_instance(f'fake_{key}_{seed}')
            for i in range(200):
                print('config dump line', i)
                logger.info(f'Iter(train) [{i + 1}/200]')
                stage.update(i + 1, 200)
            warnings.warn(f'{key} warns')
        # a later message of that logger (load_checkpoint does this) goes
        # to the current stdout (here: the next stage's log), not to the
        # closed file
        with console.stage(f'{name}, seed {seed}: test', log):
            logger.info(f'{key} after its stage')
        ap = 0.2 + 0.01 * len(deps)
        return dict(_row(name, seed, ap, ap / 2), checkpoint=key)

    monkeypatch.setattr(toy_pipeline, 'run', fake_run)
    drawn = []

    def fake_make_strip(config, checkpoints, names, out, progress, **kw):
        for i in range(10):
            print('Loads checkpoint by local backend')
            progress(i + 1, 10)
        for path in (out, kw['out_video']):
            with open(path, 'x') as f:
                f.write('picture')
        drawn.append((checkpoints, names, kw['video_id']))

    monkeypatch.setattr(
        toy_pipeline, '_track_strip', lambda: SimpleNamespace(
            make_strip=fake_make_strip,
            video_with_most_instances=lambda ann: 7))
    monkeypatch.setattr(toy_pipeline, 'generate_toyvis', lambda root, **kw: {
        'train': '',
        'val': ''
    })
    old_umask = os.umask(0o022)
    try:
        args = toy_pipeline.parse_args(
            ['--data-root', tiny_toyvis, '--work-dir',
             str(tmp_path / 'work')])
        with warnings.catch_warnings():
            warnings.simplefilter('always')  # the suite ignores them
            # shown on stderr, as the command line shows them
            warnings.showwarning = lambda msg, *a, **k: sys.stderr.write(
                f'warning: {msg}\n')
            toy_pipeline.main(args)
            out = capsys.readouterr()
            toy_pipeline.main(args)  # a second run keeps the first table
    finally:
        os.umask(old_umask)
    lines = out.out.splitlines()
    assert len(lines) < 60, out.out
    assert 'config dump' not in out.out + out.err
    assert 'warns' not in out.out + out.err
    train_lines = [ln for ln in lines if ': train [' in ln]
    # 2 header lines, 2 per row, a blank and a title, the table (2 + 3),
    # a blank, 3 sentences, the full table's path, 3 lines of pictures,
    # the wall time
    assert len(train_lines) == 3 and len(lines) == 2 + 6 + 2 + 5 + 1 + 8
    assert all('(1 warning), log ' in ln for ln in train_lines)
    log = (tmp_path / 'work' / 'baseline' / toy_pipeline.LOG_NAME).read_text()
    assert 'config dump line 199' in log and 'Iter(train) [200/200]' in log
    assert 'baseline warns' in log and 'baseline after its stage' in log
    assert ('| model | seed | AP | AP_S | AP_L | HOTA_S | HOTA_L | AssA_L '
            '| IDF1_L |') in out.out
    assert 'AR10_S' not in out.out
    assert sum(ln.endswith('.') for ln in lines) == 3  # the reading
    # the console ends with the table and its reading
    assert all(ln.endswith('.') for ln in lines[-3:])
    assert lines[-5].startswith('| ') and lines[-4] == ''
    assert drawn[0] == (['baseline', 'student'], [BASE, OOKD], 7)
    work = tmp_path / 'work'
    assert 'pictures: long_val video 7 [####################] 10/10' in \
        out.out
    assert f'{work / "strip_long_val.png"}' in out.out
    assert f'OOKD student on that video: {work / "student_long_val.mp4"}' \
        in out.out
    # the second run trained (stand-ins say so): new pictures beside
    assert len(drawn) == 2 and len(list(work.glob('strip_long_val*'))) == 2
    tables = sorted((tmp_path / 'work').glob('results*.md'))
    assert len(tables) == 2
    assert f'all columns (AP50, AR@10, AssA_S, IDF1_S): {tables[0]}' in out.out
    assert '| AR10_S |' in tables[0].read_text()
    assert all(oct(t.stat().st_mode & 0o777) == '0o644' for t in tables)


def test_stage_console_on_a_terminal_redraws_one_line_and_reports_failure():
    import io

    from mmookd.utils.stage_console import StageConsole

    class Tty(io.StringIO):

        def isatty(self):
            return True

    stream = Tty()
    console = StageConsole(stream, interval=0)
    with console.stage('x: train') as stage:
        for i in range(3):
            stage.update(i + 1, 3)
    text = stream.getvalue()
    assert text.count('\r') >= 3 and text.count('\n') == 1
    assert text.splitlines()[-1].endswith('[####################] 3/3 0:00')
    with pytest.raises(ValueError):
        with console.stage('y: test') as stage:
            stage.update(1, 4)
            raise ValueError('bad')
    assert stream.getvalue().endswith('1/4 0:00, failed\n')
