# Paper Table 4, row 2: KD without QFA. Student query i is distilled from
# teacher query i (no filtering, no association to the ground truth); no
# Minor-Paste. Row 1 (no KD) is configs/idol/idol_r50_8xb4-12k_youtubevis2022.py
# or, with the same data pipeline, ookd-ablation_r50_no-kd_youtubevis2022.py.
_base_ = ['../ookd_r50_8xb4-12k_youtubevis2022.py']

model = dict(association='index')
train_dataloader = dict(dataset=dict(pipeline=_base_.augment_pipeline))
