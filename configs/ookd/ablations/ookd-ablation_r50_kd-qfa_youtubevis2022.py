# Paper Tables 4-5: KD + QFA without Minor-Paste.
_base_ = ['../ookd_r50_8xb4-12k_youtubevis2022.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.augment_pipeline))
