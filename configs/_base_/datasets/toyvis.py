# ToyVIS: the embedded synthetic YouTube-VIS-format dataset
# (generate with `python tools/dataset_converters/generate_toyvis.py`).
# Training samples IDOL-style key/reference pairs; evaluation runs on the
# short `val` split and the long, sparsely sampled `long_val` split together
# and reports AP_S, AP_L and their mean as YouTube-VIS 2022 does, with
# TrackEval's HOTA / DetA / AssA, MOTA / IDSW and IDF1 per split beside AP.
dataset_type = 'YTVISDataset'
data_root = 'data/toyvis/'
backend_args = None
img_scale = (192, 128)

train_pipeline = [
    dict(type='KeyRefFrameSample', frame_range=10),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadVISFrame', backend_args=backend_args),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadVISFrame', backend_args=backend_args),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    sampler=dict(type='TrackImgSampler'),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/toyvis_train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=train_pipeline))

val_split = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/toyvis_val.json',
    data_prefix=dict(img_path='val/JPEGImages'),
    test_mode=True,
    pipeline=test_pipeline)
long_val_split = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/toyvis_long_val.json',
    data_prefix=dict(img_path='long_val/JPEGImages'),
    test_mode=True,
    pipeline=test_pipeline)

val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='ConcatDataset', datasets=[val_split, long_val_split]))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='YTVISMetric',
    ann_file=dict(
        short=data_root + 'annotations/toyvis_val.json',
        long=data_root + 'annotations/toyvis_long_val.json'),
    track_metrics=('HOTA', 'CLEAR', 'Identity'))
test_evaluator = val_evaluator
