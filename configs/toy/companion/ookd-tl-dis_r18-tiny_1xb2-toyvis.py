# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the toy OOKD run: paper A's motion-guided temporal loss L_TL, instance
# version, with image flow that needs no weights: OpenCV's DIS between the
# key and reference frames (the RAFT version is
# ookd-tl-raft_r18-tiny_1xb2-toyvis.py; the settings are the same).
# Compare with configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the
# extra term's key appears in the training log as `loss_tl`.
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
        inputs=dict(
            kind='track_masks',
            flow=dict(type='OpenCVFlowProvider', method='dis')),
        name='loss_tl'),
])
