# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the flagship OOKD (configs/ookd_r50.py): paper A's pixel-wise distillation
# L_pi per matched query: Bernoulli KL of the class logits (IDOL's sigmoid
# classes) from the offline teacher, and of the mask logits from the teacher's
# frozen online IDOL (tau = 1, ETC's element mean).
# The extra term's key appears in the training log as `loss_pkd_cls,
# loss_pkd_mask`.
_base_ = ['../../ookd_r50.py']

model = dict(extra_distill=[
    dict(
        type='PixelKLDistillLoss',
        mode='sigmoid',
        loss_weight=1.0,
        inputs=dict(kind='query_cls', teacher='offline'),
        name='loss_pkd_cls'),
    dict(
        type='PixelKLDistillLoss',
        mode='sigmoid',
        loss_weight=1.0,
        inputs=dict(kind='query_masks', teacher='online'),
        name='loss_pkd_mask'),
])
