# IDOL R-50 on YouTube-VIS 2021 with the official recipe
# (docs/hyperparameters.md §6 data, §10 optimisation, §2-11 model):
# 8 GPUs x 4 key/reference pairs, AdamW 1e-4, 12k iterations, step at 8k.
# Initialise from IDOL's COCO pre-training (§10 steps 1+2) with
# `load_from` (local path only; nothing is downloaded).
_base_ = ['../_base_/models/idol_r50.py', '../_base_/default_runtime.py']

num_classes = 40
model = dict(detector=dict(bbox_head=dict(num_classes=num_classes)))

# ---------------------------------------------------------------- data
dataset_type = 'YTVISDataset'
dataset_version = '2021'
data_root = 'data/youtube_vis_2021/'
backend_args = None
# §6: shortest edge from this set (same for both frames), long side <= 768
train_short_sides = [320, 352, 392, 416, 448, 480, 512, 544, 576, 608, 640]
train_max_size = 768
test_scale = (1333, 480)  # §10: test short side 480, max 1333
# image padding value: the pixel mean (BGR, as loaded)
pad_val = (104, 116, 124)

train_pipeline = [
    # key = earlier frame, reference within +-10 frames (§6)
    dict(type='KeyRefFrameSample', frame_range=10),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadVISFrame', backend_args=backend_args),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    # crop branch with p=0.5 per clip; crops drawn independently per frame
    # (detectron2's RandomCrop is not clip-aware, §6)
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
    # detectron2's filter_empty_instances after all augmentation: an
    # instance with an empty box or mask is not ground truth in that frame
    dict(type='FilterEmptyInstances', min_box_size=1e-5),
    # key and reference may differ in size after their own crops: pad them
    # to a common size (each keeps its own img_shape), as detectron2's
    # ImageList pads a batch; the pixel mean normalises to ~0
    dict(type='PadClipFrames', pad_val=pad_val),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadVISFrame', backend_args=backend_args),
            # PIL bilinear (anti-aliased when downscaling), as detectron2's
            # ResizeShortestEdge: what the official VNext weights expect
            dict(
                type='Resize',
                scale=test_scale,
                keep_ratio=True,
                backend='pillow'),
        ]),
    dict(type='PackTrackInputs')
]

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='train/instances.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        filter_cfg=dict(filter_empty_gt=False),  # §6
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='valid/instances.json',
        data_prefix=dict(img_path='valid/JPEGImages'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# The official valid split has no GT: write the CodaLab submission.
val_evaluator = dict(
    type='YTVISMetric',
    format_only=True,
    outfile_prefix='./work_dirs/idol_r50_youtubevis2021/results')
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
max_iters = 12000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# §10: AdamW (torch betas / eps), lr 1e-4, wd 1e-4 on every parameter,
# backbone lr x0.1, full-model grad-norm clipping at 0.01.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=0.01, norm_type=2))
# no warm-up (10 iterations at factor 1.0 officially), one step at 8k
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[8000],
        gamma=0.1)
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=2000,
        max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# 32 clips per iteration (8 GPUs x 4); scaled if the GPU count differs
auto_scale_lr = dict(enable=False, base_batch_size=32)

# IDOL COCO pseudo-video pre-training (steps 1 + 2), local file:
# load_from = 'checkpoints/idol_r50_cocopretrain.pth'
load_from = None
