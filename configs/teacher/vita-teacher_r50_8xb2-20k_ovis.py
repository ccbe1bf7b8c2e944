# Offline teacher R-50 on OVIS: the frozen OVIS IDOL (25 classes, OVIS
# scales, configs/idol/idol_r50_8xb2-12k_ovis.py) and VITA's OVIS top-20
# predictions per video (docs/hyperparameters.md §16, §17).
_base_ = ['./vita-teacher_r50_8xb2-20k_youtubevis2021.py']

num_classes = 25
model = dict(
    online=dict(detector=dict(bbox_head=dict(num_classes=num_classes))),
    online_checkpoint='work_dirs/idol_r50_8xb2-12k_ovis/iter_12000.pth',
    test_cfg=dict(max_per_video=20))

dataset_version = 'ovis'
data_root = 'data/ovis/'
# OVIS scales (§6, §10): shortest edge {480, ..., 800}, long side
# <= 1333 for training, short side 720 for testing.
train_pipeline = _base_.train_pipeline
train_pipeline[3].transforms[0].scales = [(1333, s)
                                          for s in range(480, 801, 32)]
test_pipeline = _base_.test_pipeline
test_pipeline[0].transforms[1].scale = (1333, 720)

train_dataloader = dict(
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
val_evaluator = dict(
    outfile_prefix='./work_dirs/vita-teacher_r50_ovis/results')
test_evaluator = val_evaluator
