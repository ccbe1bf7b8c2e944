# mmdet's Mask2Former-VIS (offline VIS) trained with OOKD's Minor-Paste:
# ./mask2former-vis_r18-tiny_1xb2-toyvis.py with only the transform added
# (mmdet's mix wrapper feeds Minor-Paste a source clip, which went through
# the same sampling / loading / resize / flip; Minor-Paste pastes its tubes,
# minor classes more often, OOKD eq. 6, before packing).
_base_ = ['./mask2former-vis_r18-tiny_1xb2-toyvis.py']

data_root = 'data/toyvis/'
minor_paste = dict(
    type='MinorPaste',
    mode='minor',  # 'clip': Clip-Paste (every tube with clip_paste_prob)
    k=0.7,
    minor_thr=0.10,
    ann_file=data_root + 'annotations/toyvis_train.json')
train_dataloader = dict(
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
