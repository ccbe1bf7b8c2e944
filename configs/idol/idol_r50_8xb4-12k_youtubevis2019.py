# IDOL R-50 on YouTube-VIS 2019: the 2021 recipe (docs/hyperparameters.md
# §10, identical for both versions) on the 2019 data and class list.
_base_ = ['./idol_r50_8xb4-12k_youtubevis2021.py']

dataset_version = '2019'
data_root = 'data/youtube_vis_2019/'

train_dataloader = dict(
    dataset=dict(data_root=data_root, dataset_version=dataset_version))
val_dataloader = dict(
    dataset=dict(data_root=data_root, dataset_version=dataset_version))
test_dataloader = val_dataloader
val_evaluator = dict(
    outfile_prefix='./work_dirs/idol_r50_youtubevis2019/results')
test_evaluator = val_evaluator
