# OOKD on ToyVIS, the main job's student (tools/toy_pipeline.py): the tiny
# IDOL, started from the shipped toy pre-training
# (checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth, the COCO
# pre-training's stand-in), fine-tuned on ToyVIS with QFA + cosine KD from
# the toy offline teacher (configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py)
# and Minor-Paste. Same model code and losses as configs/ookd_r50.py; only
# sizes and the schedule differ. The ablation rows of the main job
# (no KD, KD without QFA, KD + QFA, Minor-Paste) are the configs next to it.
_base_ = ['./idol_r18-tiny_1xb2-1500it_toyvis.py']

model = dict(
    type='OOKD',
    # as in the pre-training
    detector=dict(
        encoder=dict(
            layer_cfg=dict(
                self_attn_cfg=dict(dropout=0.0), ffn_cfg=dict(ffn_drop=0.0))),
        decoder=dict(
            layer_cfg=dict(
                self_attn_cfg=dict(dropout=0.0),
                cross_attn_cfg=dict(dropout=0.0),
                ffn_cfg=dict(ffn_drop=0.0)))),
    teacher=dict(
        config='{{ fileDirname }}/vita-teacher_r18-tiny_1xb2-toyvis.py',
        checkpoint='work_dirs/vita-teacher_r18-tiny_1xb2-toyvis/'
        'iter_600.pth'),
    assigner=dict(type='QFAAssigner', lambda_b=1.0, cls_mode='sigmoid'),
    loss_kd=dict(type='CosineKDLoss', loss_weight=1.0),
    association='qfa',
    kd_frames='both',
    # None: the teacher on each sample's frames; a bank file (tools/
    # analysis/build_knowledge_bank.py; tools/toy_pipeline.py --bank): the
    # teacher's knowledge of every whole training video, no teacher here
    knowledge_bank=None)
load_from = 'checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth'

# key/reference pair + 2 context frames for the teacher; Minor-Paste on the
# loaded frames (see configs/ookd_r50.py)
data_root = 'data/toyvis/'
img_scale = (192, 128)
load_pipeline = [
    dict(type='KeyRefClipSample', num_frames=4, frame_range=10),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadVISFrame'),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
]
minor_paste = dict(
    type='MinorPaste',
    mode='minor',
    k=0.7,
    minor_thr=0.10,
    ann_file=data_root + 'annotations/toyvis_train.json')
augment_pipeline = [
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    # instance_sources: the (video, instance) each Minor-Paste instance
    # came from, for distilling from a knowledge bank
    dict(type='PackTrackInputs', meta_keys=('instance_sources', ))
]
train_dataloader = dict(
    # mmdet's TrackImgSampler does not take dataset wrappers: one random
    # anchor frame per video and visit, as the real configs do
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type='YTVISDataset',
            data_root=data_root,
            ann_file='annotations/toyvis_train.json',
            data_prefix=dict(img_path='train/JPEGImages'),
            pipeline=load_pipeline),
        pipeline=[minor_paste] + augment_pipeline))

# fine-tuning schedule: a few hundred iterations from the pre-training
max_iters = 600
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
