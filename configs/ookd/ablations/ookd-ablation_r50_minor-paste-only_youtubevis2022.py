# Paper Table 5: Minor-Paste without KD (IDOL + Minor-Paste).
_base_ = ['../ookd_r50_8xb4-12k_youtubevis2022.py']

model = dict(teacher=None, loss_kd=None)
