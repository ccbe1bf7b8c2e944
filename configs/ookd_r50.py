# OOKD, the flagship (OOKD paper, Kim et al., WACV 2024;
# docs/hyperparameters.md §18):
# an IDOL R-50 student on YouTube-VIS 2021 distilled from the frozen
# offline teacher (configs/teacher/vita-teacher_r50_8xb2-20k_youtubevis2021.py)
# with QFA + cosine KD (eqs. 2-5) and Minor-Paste (eq. 6).
#
#   tools/dist_train.sh configs/ookd_r50.py 8
#
# Order: IDOL (configs/idol/idol_r50_8xb4-12k_youtubevis2021.py) -> teacher
# (its online_checkpoint = that IDOL) -> this config (teacher.checkpoint =
# the trained teacher). The student starts from the same COCO pre-training
# as the IDOL baseline (`load_from`) and uses IDOL's hyper-parameters
# (paper Sec. 4.1): 8 GPUs x 4 samples, AdamW 1e-4, 12k iterations.
# The saved student is a plain IDOL checkpoint: test it with this config or
# with the IDOL config.
_base_ = ['./idol/idol_r50_8xb4-12k_youtubevis2021.py']

model = dict(
    type='OOKD',
    teacher=dict(
        config='{{ fileDirname }}/teacher/'
        'vita-teacher_r50_8xb2-20k_youtubevis2021.py',
        checkpoint='work_dirs/vita-teacher_r50_8xb2-20k_youtubevis2021/'
        'iter_20000.pth'),
    # eqs. 2-3; lambda_b is not given in the paper (an open parameter)
    assigner=dict(type='QFAAssigner', lambda_b=1.0, cls_mode='sigmoid'),
    # eq. 4-5: lambda_4 = 1 (Sec. 4.1)
    loss_kd=dict(type='CosineKDLoss', loss_weight=1.0),
    association='qfa',
    kd_frames='both')

# ---------------------------------------------------------------- data
# Each sample: the student's key/reference pair (IDOL's sampling, §6)
# plus 2 context frames, so the teacher sees a 4-frame clip (the clip
# length it was trained on, Sec. 4.1). Minor-Paste (Sec. 3.4) runs on the
# loaded frames of the whole sample, before IDOL's augmentation.
dataset_type = 'YTVISDataset'
dataset_version = '2021'
data_root = 'data/youtube_vis_2021/'
num_sample_frames = 4

# IDOL's pipeline (the base config), split around Minor-Paste: its frame
# sampler becomes KeyRefClipSample, its loading step and its augmentation
# (crop branch, resize, flip, pack) are reused as they are.
load_pipeline = [
    dict(
        type='KeyRefClipSample', num_frames=num_sample_frames, frame_range=10),
    _base_.train_pipeline[1],
]
minor_paste = dict(
    type='MinorPaste',
    mode='minor',
    k=0.7,
    minor_thr=0.10,
    ann_file=data_root + 'train/instances.json',
    dataset_version=dataset_version)
# IDOL's pack also keeps the (video, instance) each pasted instance came
# from: distilling from a knowledge bank (model.knowledge_bank) looks the
# pasted instances up by their source
augment_pipeline = _base_.train_pipeline[2:-1] + [
    dict(type='PackTrackInputs', meta_keys=('instance_sources', ))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file='train/instances.json',
            data_prefix=dict(img_path='train/JPEGImages'),
            filter_cfg=dict(filter_empty_gt=False),
            pipeline=load_pipeline),
        pipeline=[minor_paste] + augment_pipeline))

val_evaluator = dict(outfile_prefix='./work_dirs/ookd_r50/results')
test_evaluator = val_evaluator
