# Paper Tables 4-5 in miniature: KD + QFA, no Minor-Paste.
_base_ = ['./ookd_r18-tiny_1xb2-toyvis.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.augment_pipeline))
