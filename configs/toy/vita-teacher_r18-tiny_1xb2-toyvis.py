# OOKD's offline teacher on ToyVIS (OOKD paper, Sec. 3.2, 4.1):
# the toy IDOL (configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py), frozen,
# + a small VITA aggregator (hidden 64, 2 encoder / 2 decoder layers,
# 20 object queries) trained on 6-frame clips for a few hundred CPU
# iterations. Train the toy IDOL first; its final checkpoint is loaded.
_base_ = ['./idol_r18-tiny_1xb2-1500it_toyvis.py']

embed_dims = 64
num_frame_queries = 30  # the toy IDOL's num_queries (fq_pos slots)
model = dict(
    _delete_=True,
    type='OfflineTeacher',
    data_preprocessor=_base_.model.data_preprocessor,
    online=_base_.model,
    # default work_dir of `tools/train.py` for the toy IDOL config
    online_checkpoint='work_dirs/idol_r18-tiny_1xb2-1500it_toyvis/'
    'iter_1500.pth',
    aggregator=dict(
        type='VITAAggregator',
        embed_dims=embed_dims,
        num_frame_queries=num_frame_queries,
        num_queries=20,
        encoder=dict(
            type='ObjectTokenEncoder',
            num_layers=2,
            window_size=6,
            num_heads=4,
            feedforward_channels=256,
            dropout=0.0),
        decoder=dict(
            type='ObjectTokenDecoder',
            num_layers=2,
            num_heads=4,
            feedforward_channels=256,
            dropout=0.0),
        frame_query_select='all',
        # Toy only (docs/changes_from_papers.md 2.11): our association
        # read-out of the frame queries + gated decoder output as f_off,
        # and each frame's boxes / masks decoded from that frame's
        # read-out. VITA's decoder output (query_readout=False, the real
        # configs' default) cannot be learnt in a few hundred CPU
        # iterations: AP_S 0.100 vs 0.210 at 600 (docs/benchmarks.md).
        query_readout=True,
        frame_readout=True,
        # "not in this frame" slot of the association (our design): masks
        # gated by the query's presence, so it can say "not here"
        absent_slot=True),
    deep_supervision=True,
    # VITA's similarity loss (loss_fg_sim, weight 0.5)
    loss_sim=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5),
    # VITA: class and mask costs on all frames (empty target where absent)
    # + IDOL's box costs where present; masks supervised on all frames
    train_cfg=dict(
        num_frame_layers=1,
        match_on_absent_frames=True,
        mask_on_absent_frames=True),
    test_cfg=dict(chunk_size=18, max_per_video=20, offload_frames=36))

# clips that fill the object encoder's window (6 frames; the paper's R50
# recipe samples 4, Sec. 4.1), one random resize / flip per clip
img_scale = (192, 128)
train_pipeline = [
    dict(type='ClipFrameSample', num_frames=6, frame_range=10),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_iters = 600
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
# VITA's optimiser (AdamW, wd 0.05, none on norms and query / slot
# embeddings) with a larger lr and looser clip for a short from-scratch
# run (lr 1e-3: AP_S 0.100 vs 0.036 with 2e-4 at 600 iterations,
# docs/benchmarks.md, issue #14). paramwise_cfg also makes mmengine skip
# the frozen online model's parameters, so the optimiser holds the
# aggregator only.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'fq_pos': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
