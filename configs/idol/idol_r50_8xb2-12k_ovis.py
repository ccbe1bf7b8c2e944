# IDOL R-50 on OVIS (docs/hyperparameters.md §6, §10, §11):
# 25 classes, 16 clips per iteration (8 GPUs x 2), larger train / test
# scales, and the OVIS tracker thresholds (mask NMS 0.3, add-new 0.3).
_base_ = ['./idol_r50_8xb4-12k_youtubevis2021.py']

num_classes = 25
model = dict(
    detector=dict(bbox_head=dict(num_classes=num_classes)),
    tracker=dict(mask_nms_thr=0.3, addnew_score_thr=0.3))

dataset_version = 'ovis'
data_root = 'data/ovis/'
# The 2021 pipelines with OVIS's scales: shortest edge {480, 512, ..., 800},
# long side <= 1333 (D2 default) for training, short side 720 for testing.
train_pipeline = _base_.train_pipeline
train_pipeline[3].transforms[0].scales = [(1333, s)
                                          for s in range(480, 801, 32)]
test_pipeline = _base_.test_pipeline
test_pipeline[0].transforms[1].scale = (1333, 720)

train_dataloader = dict(
    batch_size=2,
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
val_evaluator = dict(outfile_prefix='./work_dirs/idol_r50_ovis/results')
test_evaluator = val_evaluator

auto_scale_lr = dict(enable=False, base_batch_size=16)
