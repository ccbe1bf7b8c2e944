# IDOL R50 trained on YouTube-VIS 2021 (the YouTube-VIS 2022 training set),
# evaluated YouTube-VIS 2022 style: the short videos (= the 2021 valid set)
# and the long, sparsely sampled videos are run together, and AP_S, AP_L
# and their mean are reported (OOKD paper Table 2).
_base_ = './idol_r50_8xb4-12k_youtubevis2021.py'

data_root = 'data/youtube_vis_2022/'
# The 2022 release: valid/JPEGImages + valid/instances.json hold the 2021
# valid videos and the long videos together; the server reports AP_S, AP_L
# and their mean.
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='YTVISDataset',
        data_root=data_root,
        dataset_version='2022',
        ann_file='valid/instances.json',
        data_prefix=dict(img_path='valid/JPEGImages'),
        test_mode=True,
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

# The official 2022 valid ground truth is not public: by default write the
# server submission. With ground truth (e.g. held-out train videos split by
# tools/dataset_converters/split_ytvis.py) evaluate locally instead:
# val_evaluator = dict(type='YTVISMetric', ann_file=dict(
#     short=data_root + 'annotations/short_val.json',
#     long=data_root + 'annotations/long_val.json'))
val_evaluator = dict(
    type='YTVISMetric',
    format_only=True,
    outfile_prefix='./work_dirs/idol_r50_youtubevis2022/results')
test_evaluator = val_evaluator
