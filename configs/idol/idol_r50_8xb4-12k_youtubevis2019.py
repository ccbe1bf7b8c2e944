# IDOL R-50 on YouTube-VIS 2019: the 2021 recipe (docs/hyperparameters.md
# §10, identical for both versions) on the 2019 data and class list.
_base_ = ['./idol_r50_8xb4-12k_youtubevis2021.py']

dataset_version = '2019'
data_root = 'data/youtube_vis_2019/'

# The 2019 release keeps its annotation files at the root ({train,valid,
# test}.json), next to {train,valid,test}/JPEGImages (2021: in the folders).
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='train.json'))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='valid.json'))
test_dataloader = val_dataloader
val_evaluator = dict(
    outfile_prefix='./work_dirs/idol_r50_youtubevis2019/results')
test_evaluator = val_evaluator
