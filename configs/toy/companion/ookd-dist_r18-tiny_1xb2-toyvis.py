# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the toy OOKD run: paper B's intra- and inter-object relation distillation
# (read as DIST): per frame, the matched queries' mask logits plus a
# background logit 0, softmax over objects, Pearson relations across objects
# (inter) and pixels (intra), teacher = the offline teacher's frozen online
# IDOL.
# Compare with configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the
# extra term's key appears in the training log as `loss_dist`.
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

model = dict(extra_distill=[
    dict(
        type='InterIntraObjectDistillLoss',
        tau=1.0,
        inter_weight=1.0,
        intra_weight=1.0,
        background_logit=0.0,
        loss_weight=1.0,
        inputs=dict(kind='object_masks', teacher='online'),
        name='loss_dist'),
])
