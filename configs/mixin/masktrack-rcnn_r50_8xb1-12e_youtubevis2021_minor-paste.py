# mmdet's own MaskTrack R-CNN R-50 on YouTube-VIS 2021, trained with OOKD's
# Minor-Paste (OOKD paper Sec. 3.4, eq. 6) - issue #17.
#
# mmdet's config is the base as it is (`mmdet::`, nothing copied); added:
# * the plugin import (`custom_imports`);
# * the data read as mmookd's configs read the official release
#   (data/youtube_vis_2021/{train,valid}/instances.json and JPEGImages,
#   the native JSON through mmookd's YTVISDataset; mmdet's own loader needs
#   the CocoVID conversion, tools/dataset_converters/ytvis2cocovid.py) and
#   written as the CodaLab submission by mmookd's YTVISMetric;
# * Minor-Paste: mmdet's mix wrapper (MultiImageMixDataset) runs mmdet's
#   train pipeline (key + reference frame sampling, loading, resize, flip)
#   on the sample and on a source clip drawn by Minor-Paste, which pastes
#   the source's instance tubes (minor classes more often) before mmdet's
#   PackTrackInputs. mmdet's TrackImgSampler does not take a wrapped
#   dataset: the DefaultSampler draws one random anchor frame per video.
# The COCO Mask R-CNN initialisation stays mmdet's URL (downloaded by
# mmengine on first use; place it locally where there is no internet).
#
#   tools/dist_train.sh configs/mixin/masktrack-rcnn_r50_8xb1-12e_youtubevis2021_minor-paste.py 8  # noqa: E501
_base_ = [
    'mmdet::masktrack_rcnn/'
    'masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2021.py'
]
custom_imports = dict(imports=['mmookd'], allow_failed_imports=False)

dataset_type = 'YTVISDataset'
data_root = 'data/youtube_vis_2021/'
dataset_version = '2021'

minor_paste = dict(
    type='MinorPaste',
    mode='minor',  # 'clip': Clip-Paste (every tube with clip_paste_prob)
    k=0.7,
    minor_thr=0.10,
    ann_file=data_root + 'train/instances.json',
    dataset_version=dataset_version)
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file='train/instances.json',
            data_prefix=dict(img_path='train/JPEGImages'),
            pipeline=_base_.train_pipeline[:-1]),
        pipeline=[minor_paste, _base_.train_pipeline[-1]]))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file='valid/instances.json',
        data_prefix=dict(img_path='valid/JPEGImages')))
test_dataloader = val_dataloader
# the valid split has no ground truth: the CodaLab submission
val_evaluator = dict(
    _delete_=True,
    type='YTVISMetric',
    format_only=True,
    outfile_prefix='./work_dirs/masktrack-rcnn_r50_youtubevis2021_minor-paste/'
    'results')
test_evaluator = val_evaluator
