# Main-job baseline row: the tiny IDOL fine-tuned on exactly the student's
# samples without distillation and without Minor-Paste (paper Tables 4-5,
# row "baseline"). Its checkpoint is a plain IDOL checkpoint and is the
# toy teacher's frozen online model.
_base_ = ['./ookd_r18-tiny_1xb2-toyvis.py']

model = dict(teacher=None, loss_kd=None)
train_dataloader = dict(dataset=dict(pipeline=_base_.augment_pipeline))
