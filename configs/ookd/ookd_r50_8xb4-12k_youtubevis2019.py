# OOKD R-50 on YouTube-VIS 2019: the flagship recipe (configs/ookd_r50.py)
# with the 2019 data, class list and the 2019 teacher.
_base_ = ['../ookd_r50.py']

dataset_version = '2019'
data_root = 'data/youtube_vis_2019/'
model = dict(
    teacher=dict(
        config='{{ fileDirname }}/../teacher/'
        'vita-teacher_r50_8xb2-20k_youtubevis2019.py',
        checkpoint='work_dirs/vita-teacher_r50_8xb2-20k_youtubevis2019/'
        'iter_20000.pth'))
train_dataloader = dict(
    dataset=dict(
        # 2019 layout: {train,valid}.json at the root
        dataset=dict(
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file='train.json'),
        pipeline=[
            dict(
                _base_.minor_paste,
                ann_file=data_root + 'train.json',
                dataset_version=dataset_version)
        ] + _base_.augment_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='valid.json'))
test_dataloader = val_dataloader
val_evaluator = dict(outfile_prefix='./work_dirs/ookd_r50_youtubevis2019/'
                     'results')
test_evaluator = val_evaluator
