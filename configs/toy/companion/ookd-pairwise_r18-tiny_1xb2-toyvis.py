# Companion distillation term (issue #6, docs/companion_losses.md) added to
# the toy OOKD run: paper A's pair-wise similarity distillation L_pa: the
# cosine self-similarity of the matched query embeddings of each frame (vs the
# offline teacher's f_off) and of the stride-16 mask features (vs the
# teacher's online IDOL).
# Compare with configs/toy/ookd_r18-tiny_1xb2-toyvis.py (OOKD alone); the
# extra term's key appears in the training log as `loss_pa_query,
# loss_pa_dense`.
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

model = dict(extra_distill=[
    dict(
        type='PairwiseSimilarityDistillLoss',
        loss_weight=1.0,
        inputs=dict(
            kind='query_embeds', teacher='offline', group='frame',
            min_pairs=2),
        name='loss_pa_query'),
    dict(
        type='PairwiseSimilarityDistillLoss',
        pool_kernel=2,
        loss_weight=1.0,
        inputs=dict(kind='mask_feats', teacher='online'),
        name='loss_pa_dense'),
])
