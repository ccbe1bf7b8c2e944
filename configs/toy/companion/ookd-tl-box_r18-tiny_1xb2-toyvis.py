# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the toy OOKD run: paper A's motion-guided temporal loss L_TL, instance
# version without a flow network: each GT track's key-frame mask vs its
# reference-frame mask warped by the affine map between its two GT boxes
# (BoxFlowProvider, our design).
# Compare with configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the
# extra term's key appears in the training log as `loss_tl_box`.
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

model = dict(extra_distill=[
    dict(
        type='MotionGuidedTemporalLoss',
        activation='sigmoid',
        occ_mode='l1',
        mask_power=1,
        oob_zero=True,
        resolution='pred',
        loss_weight=0.1,
        inputs=dict(kind='track_masks', flow=dict(type='BoxFlowProvider')),
        name='loss_tl_box'),
])
