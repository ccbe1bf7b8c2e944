# Pre-training of the tiny IDOL, the toy counterpart of IDOL's COCO
# pre-training (docs/hyperparameters.md §10): the same key/reference training
# on a larger ToyVIS drawn with another seed (240 training videos, disjoint
# from data/toyvis), so the main job can start from a model that has seen
# shapes before, as every real IDOL / OOKD run starts from COCO weights.
#
#   python tools/dataset_converters/generate_toyvis.py \
#       --out data/toyvis_pretrain --seed 100 --num-train 240 \
#       --num-val 1 --num-long-val 1
#   OMP_NUM_THREADS=1 python tools/train.py \
#       configs/toy/idol_r18-tiny_1xb2-8k_toyvis-pretrain.py
#
# The result ships as checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth
# (see docs/benchmarks.md for the run that made it).
_base_ = ['./idol_r18-tiny_1xb2-1500it_toyvis.py']

data_root = 'data/toyvis_pretrain/'
# Short training from scratch: no dropout, a larger constant lr (measured:
# loss 11.1 vs 13.6 after 600 iterations with lr 4e-4 and dropout 0.1).
model = dict(
    detector=dict(
        encoder=dict(
            layer_cfg=dict(
                self_attn_cfg=dict(dropout=0.0), ffn_cfg=dict(ffn_drop=0.0))),
        decoder=dict(
            layer_cfg=dict(
                self_attn_cfg=dict(dropout=0.0),
                cross_attn_cfg=dict(dropout=0.0),
                ffn_cfg=dict(ffn_drop=0.0)))))
train_dataloader = dict(dataset=dict(data_root=data_root))

max_iters = 8000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100)
]
# the ToyVIS val splits of data/toyvis measure it (tools/test.py)
val_dataloader = dict(
    dataset=dict(datasets=[
        dict(data_root='data/toyvis/'),
        dict(data_root='data/toyvis/')
    ]))
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=4))
