# Offline teacher R-50 on YouTube-VIS 2019: the 2021 recipe on the 2019
# data, the 2019 IDOL, and VITA's YTVIS-19 sampling range (+-20 frames,
# docs/hyperparameters.md §16).
_base_ = ['./vita-teacher_r50_8xb2-20k_youtubevis2021.py']

model = dict(online_checkpoint='work_dirs/idol_r50_8xb4-12k_youtubevis2019/'
             'iter_12000.pth')

dataset_version = '2019'
data_root = 'data/youtube_vis_2019/'
train_pipeline = _base_.train_pipeline
train_pipeline[0].frame_range = 20
# 2019 layout: {train,valid}.json at the root
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='train.json',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='valid.json'))
test_dataloader = val_dataloader
val_evaluator = dict(
    outfile_prefix='./work_dirs/vita-teacher_r50_youtubevis2019/results')
test_evaluator = val_evaluator
