# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the flagship OOKD (configs/ookd_r50.py): paper B's CKA attention
# distillation: the decoder's deformable cross-attention of every layer
# rasterised onto a 16 x 16 grid, rows = grid cells, columns = (head, query)
# (linear CKA, no query correspondence needed), teacher = the offline
# teacher's frozen online IDOL.
# The extra term's key appears in the training log as `loss_cka`.
_base_ = ['../../ookd_r50.py']

model = dict(extra_distill=[
    dict(
        type='AttentionCKALoss',
        kernel='linear',
        loss_weight=1.0,
        inputs=dict(
            kind='decoder_attention',
            teacher='online',
            layers=(0, 1, 2, 3, 4, 5),
            grid_size=(16, 16),
            rows='cells'),
        name='loss_cka'),
])
