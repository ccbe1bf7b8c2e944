# Paper Table 5 in miniature: Minor-Paste without KD.
_base_ = ['./ookd_r18-tiny_1xb2-toyvis.py']

model = dict(teacher=None, loss_kd=None)
