# Paper Table 7: KD + QFA with Clip-Paste (every instance of the source clip
# pasted regardless of class) instead of Minor-Paste.
_base_ = ['../ookd_r50_8xb4-12k_youtubevis2022.py']

train_dataloader = dict(
    dataset=dict(pipeline=[dict(_base_.minor_paste, mode='clip')] +
                 _base_.augment_pipeline))
