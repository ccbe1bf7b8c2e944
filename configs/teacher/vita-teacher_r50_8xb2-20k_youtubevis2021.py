# OOKD's offline teacher, R-50, YouTube-VIS 2021 (OOKD paper,
# Sec. 3.2, 4.1; docs/hyperparameters.md §12-18): the trained IDOL R-50 of
# configs/idol/idol_r50_8xb4-12k_youtubevis2021.py, frozen, + VITA's object
# token association (object encoder: 6 layers, windows of 6 frames, shifted
# at inference; object decoder: 3 layers, 100 object queries; 8 heads,
# FFN 2048, no dropout), trained on 4-frame clips (OOKD Sec. 4.1) with
# VITA's optimiser (AdamW lr 5e-5, wd 0.05 but none on norms / query and
# slot embeddings, grad-norm clip 0.01; §16).
# Not stated by the papers, our choices: 8 GPUs x 2 clips, 20k iterations
# with a x0.1 step at 15k (only the aggregator is trained; VITA's 187.5k
# iterations train the whole detector jointly with COCO pseudo-videos), and
# IDOL's train / test scales (the frozen IDOL was trained at them).
# Also ours (docs/benchmarks.md, toy teacher): the offline queries are read
# out through the learned per-frame association (association-weighted frame
# queries + a gated decoder output), so the frozen IDOL heads decode vectors
# of the space they were trained on; the association is supervised like
# VITA's similarity loss (weight 0.5). On ToyVIS this took the teacher from
# AP_S 0.028 to 0.128 at the same 300 iterations.
_base_ = ['../idol/idol_r50_8xb4-12k_youtubevis2021.py']

embed_dims = 256
model = dict(
    _delete_=True,
    type='OfflineTeacher',
    data_preprocessor=_base_.model.data_preprocessor,
    online=_base_.model,
    # The trained IDOL (local file; default work_dir of tools/train.py).
    # Set to None when loading a full teacher checkpoint instead.
    online_checkpoint='work_dirs/idol_r50_8xb4-12k_youtubevis2021/'
    'iter_12000.pth',
    aggregator=dict(
        type='VITAAggregator',
        embed_dims=embed_dims,
        num_frame_queries=300,  # IDOL's queries per frame (§12)
        num_queries=100,
        encoder=dict(
            type='ObjectTokenEncoder',
            num_layers=6,
            window_size=6,
            num_heads=8,
            feedforward_channels=2048,
            dropout=0.0),
        decoder=dict(
            type='ObjectTokenDecoder',
            num_layers=3,
            num_heads=8,
            feedforward_channels=2048,
            dropout=0.0),
        frame_query_select='all',
        # VITA: the offline query is the object decoder output, distilled
        # through the frozen embedding head (True: our association
        # read-out of the frame queries + gated decoder output)
        query_readout=False,
        # "not in this frame" slot of the association (our design): a
        # query's masks are gated by its presence in each frame
        absent_slot=True),
    deep_supervision=True,
    # VITA's similarity loss (loss_fg_sim, SIM_WEIGHT 0.5)
    loss_sim=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5),
    train_cfg=dict(
        # VITA feeds the frame queries of the last 3 detector layers as
        # independent samples (LAST_LAYER_NUM, §12)
        num_frame_layers=3,
        # class and VITA's mask costs (sigmoid CE 5, dice 5) over all
        # frames, mask target empty where the instance is absent; IDOL's
        # box costs where it is present (DEFAULT_MATCH_COSTS)
        match_on_absent_frames=True,
        # masks supervised on all frames, empty where absent (VITA)
        mask_on_absent_frames=True),
    # VITA: online pass in chunks of 18 frames, top-10 (query, class)
    # predictions per video, per-frame tensors on the CPU beyond 36 frames
    test_cfg=dict(chunk_size=18, max_per_video=10, offload_frames=36))

# ---------------------------------------------------------------- data
backend_args = None
train_short_sides = [320, 352, 392, 416, 448, 480, 512, 544, 576, 608, 640]
train_max_size = 768
train_pipeline = [
    # 4-frame clips (OOKD Sec. 4.1) within +-8 frames (VITA YTVIS-21)
    dict(type='ClipFrameSample', num_frames=4, frame_range=8),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadVISFrame', backend_args=backend_args),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    # crop branch with p=0.5, one crop for the whole clip (instance tubes
    # stay consistent; VITA's crops are clip-aware too)
    dict(
        type='RandomApply',
        prob=0.5,
        transforms=[
            dict(
                type='TransformBroadcaster',
                share_random_params=True,
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
    dict(type='FilterEmptyInstances', min_box_size=1e-5),
    dict(type='PadClipFrames', pad_val=_base_.pad_val),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))

val_evaluator = dict(
    outfile_prefix='./work_dirs/vita-teacher_r50_youtubevis2021/results')
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
max_iters = 20000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
# paramwise_cfg also makes mmengine's optimiser constructor skip the frozen
# IDOL parameters (requires_grad=False): the optimiser holds only the
# aggregator.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'fq_pos': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[15000],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=2000,
        max_keep_ckpts=3))

# 16 clips per iteration (8 GPUs x 2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
load_from = None
