# OOKD R-50 on OVIS: IDOL's OVIS recipe (configs/idol/idol_r50_8xb2-12k_ovis.py:
# 25 classes, 8 GPUs x 2, larger scales, OVIS tracker thresholds) with the
# OVIS teacher, QFA + KD and Minor-Paste.
_base_ = ['../ookd_r50.py']

num_classes = 25
dataset_version = 'ovis'
data_root = 'data/ovis/'
model = dict(
    detector=dict(bbox_head=dict(num_classes=num_classes)),
    tracker=dict(mask_nms_thr=0.3, addnew_score_thr=0.3),
    teacher=dict(
        config='{{ fileDirname }}/../teacher/vita-teacher_r50_8xb2-20k_ovis.py',
        checkpoint='work_dirs/vita-teacher_r50_8xb2-20k_ovis/iter_20000.pth'))

augment_pipeline = _base_.augment_pipeline
augment_pipeline[1].transforms[0].scales = [(1333, s)
                                            for s in range(480, 801, 32)]
test_pipeline = _base_.test_pipeline
test_pipeline[0].transforms[1].scale = (1333, 720)
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file='annotations_train.json',
            data_prefix=dict(img_path='train')),
        pipeline=[
            dict(
                _base_.minor_paste,
                ann_file=data_root + 'annotations_train.json',
                dataset_version=dataset_version)
        ] + augment_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='annotations_valid.json',
        data_prefix=dict(img_path='valid'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(outfile_prefix='./work_dirs/ookd_r50_ovis/results')
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=16)
