# Copyright (c) mmookd contributors. All rights reserved.
"""tools/toy_pipeline.py: which rows run in which order, what each row's
evaluation reports."""
import os.path as osp
import sys

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
    assert toy_pipeline.json_rows([row], args) == [
        dict(
            model='OOKD',
            seed=3,
            AP=0.2,
            AP_S=0.3,
            AP_L=0.1,
            num_val=2,
            num_long_val=1)
    ]
