# IDOL made small enough to train on ToyVIS on a CPU in minutes:
# ResNet-18 at 1/4 width, hidden 64, 4 heads, 2 + 2 transformer layers,
# 30 queries. Same model code, losses, assignment and tracker as the full
# configs (docs/hyperparameters.md §2-11); only sizes and the schedule differ.
_base_ = [
    '../_base_/models/idol_r50.py', '../_base_/datasets/toyvis.py',
    '../_base_/default_runtime.py'
]

num_classes = 8
embed_dims = 64
num_levels = 4
model = dict(
    detector=dict(
        num_queries=30,
        backbone=dict(
            depth=18,
            base_channels=16,
            frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False,
            init_cfg=None),
        neck=dict(in_channels=[32, 64, 128], out_channels=embed_dims),
        encoder=dict(
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
                ffn_cfg=dict(embed_dims=embed_dims,
                             feedforward_channels=256))),
        decoder=dict(
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
                cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
                ffn_cfg=dict(embed_dims=embed_dims,
                             feedforward_channels=256))),
        positional_encoding=dict(num_feats=embed_dims // 2),
        bbox_head=dict(
            num_classes=num_classes,
            embed_dims=embed_dims,
            embed_channels=embed_dims)),
    mask_head=dict(in_channels=embed_dims, branch_mid_channels=32))

max_iters = 1500
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# IDOL's optimiser (§10) with a larger lr, no backbone lr multiplier and a
# looser clip: training from scratch for minutes, not fine-tuning a
# pre-trained model for hours.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2))
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
# same seed, same machine, same numbers: deterministic algorithms, seeded
# data workers (mmengine) and a fixed CPU thread count (torch's reductions
# depend on it); tools/toy_pipeline.py --threads overrides it
randomness = dict(seed=0, deterministic=True)
custom_hooks = [dict(type='ReproducibilityHook', num_threads=2)]
