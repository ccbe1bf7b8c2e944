# Paper Tables 4-5, baseline row: IDOL alone (loss_kd=None, no teacher),
# trained on the same samples as the distilled rows, without Minor-Paste.
_base_ = ['../ookd_r50_8xb4-12k_youtubevis2022.py']

model = dict(teacher=None, loss_kd=None)
train_dataloader = dict(dataset=dict(pipeline=_base_.augment_pipeline))
