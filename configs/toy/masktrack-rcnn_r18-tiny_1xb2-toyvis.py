# mmdet's own MaskTrack R-CNN config (`mmdet::`, YouTube-VIS 2021) made small
# for ToyVIS on CPU: ResNet-18 at 1/4 width, 64-channel FPN and heads, 8
# classes, fewer samples and detections; mmookd's ToyVIS loader and metric
# (AP_S / AP_L, TrackEval's HOTA / AssA / IDF1). The backbone starts from
# the shipped toy pre-training (the same ResNet inside the tiny IDOL), as
# mmdet's config starts from a COCO Mask R-CNN: from scratch it stays near
# AP 0 after 600 iterations (docs/benchmarks.md, issue #17). The Minor-Paste
# variant is ./mixin/masktrack-rcnn_r18-tiny_1xb2-toyvis_minor-paste.py.
_base_ = [
    'mmdet::masktrack_rcnn/'
    'masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2021.py'
]
# the plugin (its dataset, loader and metric)
custom_imports = dict(imports=['mmookd'], allow_failed_imports=False)

num_classes = 8
chans = 64
model = dict(
    detector=dict(
        backbone=dict(
            depth=18,
            base_channels=16,
            frozen_stages=-1,
            norm_eval=False,
            init_cfg=dict(
                type='Pretrained',
                prefix='detector.backbone.',
                checkpoint='checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth')
        ),
        neck=dict(in_channels=[16, 32, 64, 128], out_channels=chans),
        # toy objects are small in 192x128 frames
        rpn_head=dict(
            in_channels=chans,
            feat_channels=chans,
            anchor_generator=dict(scales=[4])),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=chans),
            bbox_head=dict(
                in_channels=chans,
                fc_out_channels=256,
                num_classes=num_classes),
            mask_roi_extractor=dict(out_channels=chans),
            mask_head=dict(
                num_convs=2,
                in_channels=chans,
                conv_out_channels=chans,
                num_classes=num_classes)),
        train_cfg=dict(
            rpn_proposal=dict(max_per_img=100),
            rcnn=dict(sampler=dict(num=64))),
        test_cfg=dict(
            rpn=dict(max_per_img=100),
            rcnn=dict(score_thr=0.05, max_per_img=10)),
        init_cfg=None),
    track_head=dict(
        roi_extractor=dict(out_channels=chans),
        embed_head=dict(in_channels=chans, fc_out_channels=256),
        train_cfg=dict(sampler=dict(num=64))))

# ---------------------------------------------------------------- data
# ToyVIS through mmookd's YTVISDataset (native YouTube-VIS JSON) and the
# key / reference sampling of configs/_base_/datasets/toyvis.py
dataset_type = 'YTVISDataset'
dataset_version = None  # mmdet's base names 2021; ToyVIS has no version
data_root = 'data/toyvis/'
img_scale = (192, 128)
train_pipeline = [
    dict(type='KeyRefFrameSample', frame_range=10),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadVISFrame'),
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
            dict(type='LoadVISFrame'),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
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
    val_split,
    ann_file='annotations/toyvis_long_val.json',
    data_prefix=dict(img_path='long_val/JPEGImages'))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    sampler=dict(
        _delete_=True, type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[val_split, long_val_split]))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='YTVISMetric',
    ann_file=dict(
        short=data_root + 'annotations/toyvis_val.json',
        long=data_root + 'annotations/toyvis_long_val.json'),
    track_metrics=('HOTA', 'CLEAR', 'Identity'))
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
# a short CPU run: AdamW at a larger lr than mmdet's SGD recipe
max_iters = 600
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters + 1)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=3e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
