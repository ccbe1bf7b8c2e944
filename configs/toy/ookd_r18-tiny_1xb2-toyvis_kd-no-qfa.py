# Paper Table 4 in miniature: KD without QFA (student query i distilled
# from teacher query i), no Minor-Paste.
_base_ = ['./ookd_r18-tiny_1xb2-toyvis.py']

model = dict(association='index')
train_dataloader = dict(dataset=dict(pipeline=_base_.augment_pipeline))
