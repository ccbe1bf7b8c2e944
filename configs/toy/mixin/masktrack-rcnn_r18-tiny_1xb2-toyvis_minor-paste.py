# mmdet's MaskTrack R-CNN (online VIS) trained with OOKD's Minor-Paste: the
# toy MaskTrack R-CNN (../masktrack-rcnn_r18-tiny_1xb2-toyvis.py) with only
# the transform added. Its own pipeline runs unchanged on each sample (key
# + reference frame) and on the source clip; Minor-Paste pastes the source
# clip's tubes (minor classes more often, OOKD eq. 6) before packing.
# mmdet's mix wrapper (MultiImageMixDataset) feeds Minor-Paste its source
# clip; mmdet's TrackImgSampler does not take wrapped datasets, so the
# sampler is the DefaultSampler (one random anchor frame per video and
# visit). Compare with ../masktrack-rcnn_r18-tiny_1xb2-toyvis.py (the row
# without Minor-Paste, docs/benchmarks.md).
_base_ = ['../masktrack-rcnn_r18-tiny_1xb2-toyvis.py']

data_root = 'data/toyvis/'
minor_paste = dict(
    type='MinorPaste',
    mode='minor',  # 'clip': Clip-Paste (every tube with clip_paste_prob)
    k=0.7,
    minor_thr=0.10,
    ann_file=data_root + 'annotations/toyvis_train.json')
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type='YTVISDataset',
            data_root=data_root,
            ann_file='annotations/toyvis_train.json',
            data_prefix=dict(img_path='train/JPEGImages'),
            pipeline=_base_.train_pipeline[:-1]),
        pipeline=[minor_paste, _base_.train_pipeline[-1]]))
