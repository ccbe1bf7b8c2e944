# IDOL R-50 pre-training on COCO pseudo key/reference pairs, YouTube-VIS
# 2021 vocabulary (docs/hyperparameters.md §10 step 2; data §6, optimisation
# §10 "COCO pair pre-train R50"): every COCO image is augmented twice,
# independently, into a key and a reference view with instance ids 1..N;
# COCO categories are mapped to the 40 YouTube-VIS 2021 classes
# (coco2ytvis2021 table, unmapped annotations dropped). 8 GPUs x 4 pairs,
# AdamW 2e-4, 59,200 iterations, steps at 22,200 / 44,400.
# An option, not the official recipe: IDOL pre-trains on all 80 COCO classes
# (idol_r50_8xb4-59200it_coco-pseudo.py, which inherits this file's recipe).
#
# Step 3 (fine-tuning) starts from this run's final checkpoint: in
# configs/idol/idol_r50_8xb4-12k_youtubevis2021.py set
#   load_from = 'work_dirs/idol_r50_8xb4-59200it_coco-pseudo-ytvis2021/iter_59200.pth'
# The class count and order (YouTube-VIS 2021) are the same, so every
# weight, the classifier included, is reused.
_base_ = ['../_base_/models/idol_r50.py', '../_base_/default_runtime.py']

num_classes = 40
model = dict(detector=dict(bbox_head=dict(num_classes=num_classes)))

# ---------------------------------------------------------------- data
dataset_type = 'CocoPseudoVideoDataset'
category_map = 'coco2ytvis2021'  # COCO -> YouTube-VIS 2021 (§6)
data_root = 'data/coco/'
backend_args = None
# §6 / §10: final shortest edge from this set, long side <= 1333
train_short_sides = [320, 352, 392, 416, 448, 480, 512, 544, 576, 608, 640]
train_max_size = 1333
# crop branch: shortest edge {400, 500, 600} (no long-side cap in
# detectron2) then an absolute_range crop of 384..600 px per side
crop_short_sides = [400, 500, 600]
no_max_size = 100000
# Views of different sizes are padded to a common size with the pixel mean
# (BGR), i.e. ~0 after normalisation, as detectron2 pads normalised images.
pad_val = (104, 116, 124)

# One view: RandomFlip(0.5) -> p=0.5 [resize {400,500,600} -> RandomCrop
# absolute_range (384, 600)] -> resize {320..640}, max 1333. Each view draws
# its own parameters (PRETRAIN_SAME_CROP False).
view_transforms = [
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomApply',
        prob=0.5,
        transforms=[
            dict(
                type='RandomChoiceResize',
                scales=[(no_max_size, s) for s in crop_short_sides],
                keep_ratio=True),
            # never reject a crop: instances left empty are handled by
            # PseudoKeyRefPair (§6 invalid instances)
            dict(
                type='RandomCrop',
                crop_type='absolute_range',
                crop_size=(384, 600),
                allow_negative_crop=True,
                recompute_bbox=True),
        ]),
    dict(
        type='RandomChoiceResize',
        scales=[(train_max_size, s) for s in train_short_sides],
        keep_ratio=True),
]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PseudoKeyRefPair',
        view_transforms=view_transforms,
        same_aug=False,
        pad_val=pad_val),
    dict(type='PackTrackInputs')
]

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        category_map=category_map,
        # FILTER_EMPTY_ANNOTATIONS True: images without a mapped instance
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline,
        backend_args=backend_args))
# No evaluation during pre-training: it is judged by the YouTube-VIS
# fine-tuning (step 3) that loads it.
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# ---------------------------------------------------------------- schedule
max_iters = 59200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)

# §10: AdamW (torch betas / eps), lr 2e-4, wd 1e-4 on every parameter,
# backbone lr x0.1, full-model grad-norm clipping at 0.01.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=0.01, norm_type=2))
# no warm-up (10 iterations at factor 1.0 officially), steps at 22.2k/44.4k
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[22200, 44400],
        gamma=0.1)
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=4000,
        max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# 32 image pairs per iteration (8 GPUs x 4); scaled if the GPU count differs
auto_scale_lr = dict(enable=False, base_batch_size=32)

# IDOL.md: step 2 should start from step-1 weights (COCO instance
# segmentation without the contrastive parts; not released). Local file:
# load_from = 'checkpoints/idol_r50_coco_step1.pth'
load_from = None
