# IDOL R-50 on OVIS (IDOL_VITA_SPEC.md §1.6, §1.10, §1.12, §5.1):
# 25 classes, 16 clips per iteration (8 GPUs x 2), larger train / test
# scales, and the OVIS tracker thresholds (mask NMS 0.3, add-new 0.3).
_base_ = ['./idol_r50_8xb4-12k_youtubevis2021.py']

num_classes = 25
model = dict(
    detector=dict(bbox_head=dict(num_classes=num_classes)),
    tracker=dict(mask_nms_thr=0.3, addnew_score_thr=0.3))

dataset_version = 'ovis'
data_root = 'data/ovis/'
# shortest edge {480, 512, ..., 800}, long side <= 1333 (D2 default)
train_short_sides = list(range(480, 801, 32))
train_max_size = 1333
test_scale = (1333, 720)

train_pipeline = [
    dict(type='KeyRefFrameSample', frame_range=10),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(
        type='RandomApply',
        prob=0.5,
        transforms=[
            dict(
                type='TransformBroadcaster',
                share_random_params=False,
                transforms=[
                    dict(
                        type='RandomCrop',
                        crop_type='absolute_range',
                        crop_size=(384, 600),
                        allow_negative_crop=True,
                        recompute_bbox=True)
                ])
        ]),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(
                type='RandomChoiceResize',
                scales=[(train_max_size, s) for s in train_short_sides],
                keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=test_scale, keep_ratio=True),
        ]),
    dict(type='PackTrackInputs')
]

train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='annotations_train.json',
        data_prefix=dict(img_path='train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='annotations_valid.json',
        data_prefix=dict(img_path='valid'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(outfile_prefix='./work_dirs/idol_r50_ovis/results')
test_evaluator = val_evaluator

auto_scale_lr = dict(enable=False, base_batch_size=16)
