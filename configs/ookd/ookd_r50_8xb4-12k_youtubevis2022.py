# OOKD R-50 trained on YouTube-VIS 2021 (= the 2022 training set, as
# configs/ookd_r50.py) and evaluated YouTube-VIS 2022 style: short and long
# validation videos together, AP_S / AP_L / mean (paper Table 2). The
# paper's ablations (Tables 4-7, configs/ookd/ablations/) inherit this.
_base_ = ['../ookd_r50.py']

data_root_2022 = 'data/youtube_vis_2022/'
# The 2022 release: valid/JPEGImages + valid/instances.json hold the 2021
# valid videos and the long videos together; the server reports AP_S, AP_L
# and their mean.
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='YTVISDataset',
        data_root=data_root_2022,
        dataset_version='2022',
        ann_file='valid/instances.json',
        data_prefix=dict(img_path='valid/JPEGImages'),
        test_mode=True,
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
# No public 2022 valid ground truth: write the server submission, or with
# local ground truth use
# val_evaluator = dict(type='YTVISMetric', ann_file=dict(
#     short=data_root_2022 + 'annotations/short_val.json',
#     long=data_root_2022 + 'annotations/long_val.json'))
val_evaluator = dict(
    type='YTVISMetric',
    format_only=True,
    outfile_prefix='./work_dirs/ookd_r50_youtubevis2022/results')
test_evaluator = val_evaluator
