# mmdet's own Mask2Former-VIS (offline VIS: every frame of the clip attends
# to every other; memory grows with the clip length) on ToyVIS, on CPU:
# mmdet's config inherited as it is (`mmdet::`), made small (ResNet-18 at
# 1/4 width, 32 channels, 20 queries, 3 decoder layers) and pointed at
# ToyVIS with mmookd's loader and metric. Trained on 2-frame clips as mmdet
# trains it; the backbone starts from the shipped toy pre-training (the same
# ResNet inside the tiny IDOL), as mmdet's config starts from COCO (AP 0.040
# vs 0.024 from scratch after 600 iterations, seed 0, docs/benchmarks.md). It is the
# foreign-family offline teacher of
# ./ookd_r18-tiny_1xb2-toyvis_mask2former-teacher.py (docs/mixin.md).
_base_ = ['mmdet::mask2former_vis/mask2former_r50_8xb2-8e_youtubevis2021.py']
# the plugin (its dataset, metric and the teacher adapter)
custom_imports = dict(imports=['mmookd'], allow_failed_imports=False)

num_classes = 8
chans = 32
model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            prefix='detector.backbone.',
            checkpoint='checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth')),
    track_head=dict(
        in_channels=[16, 32, 64, 128],
        feat_channels=chans,
        out_channels=chans,
        num_classes=num_classes,
        num_queries=20,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=chans, num_heads=4),
                    ffn_cfg=dict(embed_dims=chans, feedforward_channels=128))),
            positional_encoding=dict(num_feats=chans // 2)),
        positional_encoding=dict(num_feats=chans // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=chans, num_heads=4),
                cross_attn_cfg=dict(embed_dims=chans, num_heads=4),
                ffn_cfg=dict(embed_dims=chans, feedforward_channels=128))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=1024)),
    init_cfg=None)

# ---------------------------------------------------------------- data
# ToyVIS through mmookd's YTVISDataset (native YouTube-VIS JSON); mmdet's
# pipelines at the toy scale
dataset_type = 'YTVISDataset'
dataset_version = None  # mmdet's base names 2021; ToyVIS has no version
data_root = 'data/toyvis/'
img_scale = (192, 128)
train_pipeline = [
    dict(
        type='UniformRefFrameSample',
        num_ref_imgs=1,
        frame_range=10,
        filter_key_img=True),
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
# mmdet's AdamW recipe with a larger lr and looser clip for a short CPU run;
# the backbone trains at the full lr (mmdet's x0.1 is for ImageNet / COCO
# weights; the toy pre-training is small)
max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))),
    clip_grad=dict(max_norm=1.0))
param_scheduler = dict(end=max_iters, milestones=[int(max_iters * 0.8)])
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(interval=max_iters, save_last=True, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
