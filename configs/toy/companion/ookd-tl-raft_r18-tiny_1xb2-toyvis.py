# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the toy OOKD run: paper A's motion-guided temporal loss L_TL, instance
# version: the student's masks of each GT track at the key frame vs its
# reference-frame masks warped with RAFT flow (our VIS settings:
# sigmoid masks, L1 occlusion, O^1, out-of-bounds zeroed, stride-4 resolution;
# lambda_TL = 0.1 as the released config).
# Compare with configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the
# extra term's key appears in the training log as `loss_tl`.
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

# RAFT weights are read from a local file, never downloaded: save
# torchvision's `raft_small(weights='Raft_Small_Weights.C_T_V2')` state
# dict (its .pth file) there first.
raft = dict(
    type='RAFTFlowProvider',
    arch='raft_small',
    checkpoint='checkpoints/flow/raft_small_C_T_V2-01064c6d.pth')

model = dict(extra_distill=[
    dict(
        type='MotionGuidedTemporalLoss',
        activation='sigmoid',
        occ_mode='l1',
        mask_power=1,
        oob_zero=True,
        resolution='pred',
        loss_weight=0.1,
        inputs=dict(kind='track_masks', flow=raft),
        name='loss_tl'),
])
