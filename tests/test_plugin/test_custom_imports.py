# Copyright (c) mmookd contributors. All rights reserved.
"""A plain mmdet config that adds ``custom_imports=['mmookd']`` can build
mmookd's components through mmdet's own registries."""
import subprocess
import sys
import textwrap


def test_plain_mmdet_config_uses_mmookd_components(tmp_path, tiny_toyvis):
    cfg_file = tmp_path / 'plain_mmdet_cfg.py'
    cfg_file.write_text(
        textwrap.dedent(f"""
        _base_ = 'mmdet::_base_/default_runtime.py'
        custom_imports = dict(imports=['mmookd'], allow_failed_imports=False)
        train_pipeline = [
            dict(type='KeyRefFrameSample', frame_range=3),
            dict(type='TransformBroadcaster', share_random_params=True,
                 transforms=[dict(type='LoadImageFromFile'),
                             dict(type='LoadTrackAnnotations',
                                  with_mask=True)]),
            dict(type='PackTrackInputs')]
        dataset = dict(type='YTVISDataset', data_root={tiny_toyvis!r},
                       ann_file='annotations/toyvis_train.json',
                       data_prefix=dict(img_path='train/JPEGImages'),
                       pipeline=train_pipeline)
        val_evaluator = dict(type='YTVISMetric')
        """))
    # A fresh interpreter: nothing of mmookd is imported before the config.
    code = textwrap.dedent(f"""
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(cfg_file)!r})
        assert 'mmookd' in sys.modules
        init_default_scope(cfg.default_scope)
        from mmdet.registry import DATASETS, METRICS
        metric = METRICS.build(cfg.val_evaluator)
        dataset = DATASETS.build(cfg.dataset)
        sample = dataset[0]
        tds = sample['data_samples']
        print('RESULT', type(metric).__name__, len(dataset), len(tds),
              tds.key_frames_inds, tds.ref_frames_inds)
    """)
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT')]
    words = line[-1].split()[1:]
    assert words[0] == 'YTVISMetric'
    assert int(words[1]) == 3  # 3 training videos
    assert int(words[2]) == 2  # key + reference frame
