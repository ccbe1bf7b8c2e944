# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the toy OOKD run: paper A's pair-wise-frames distillation L_PF at the query
# level: the key-to-reference affinity of the matched instances' embeddings,
# distilled from the offline teacher's f_off (the association structure IDOL's
# tracker uses).
# Compare with configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the
# extra term's key appears in the training log as `loss_pf`.
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

model = dict(extra_distill=[
    dict(
        type='CrossFrameAffinityDistillLoss',
        mode='mse',
        loss_weight=1.0,
        inputs=dict(kind='cross_frame_embeds', teacher='offline'),
        name='loss_pf'),
])
