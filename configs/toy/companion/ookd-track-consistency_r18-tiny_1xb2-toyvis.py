# Companion distillation term (issue #6, docs/companion_losses.md) added to the
# toy OOKD run: the flow-free instance-level temporal term (paper A's flow-free
# option, our design): 1 - cos of the student's embeddings of the same GT track
# at the key and reference frames. Compare with
# configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the extra term's key
# appears in the training log as `loss_track_consistency`.
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

model = dict(extra_distill=[
    dict(
        type='InstanceTemporalConsistencyLoss',
        metric='cosine',
        loss_weight=1.0,
        inputs=dict(kind='track_embeds', field='embeds'),
        name='loss_track_consistency'),
])
