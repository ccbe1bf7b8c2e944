# Offline teacher with the frozen IDOL Swin-L
# (configs/idol/idol_swin-l-p4-w12-384_8xb4-12k_youtubevis2021.py), same
# aggregator and recipe as R-50. VITA keeps 100 object queries for Swin-L
# (docs/hyperparameters.md §14); IDOL keeps 300 queries per frame.
_base_ = ['./vita-teacher_r50_8xb2-20k_youtubevis2021.py']

model = dict(
    online=dict(
        detector=dict(
            backbone=dict(
                _delete_=True,
                type='SwinTransformer',
                pretrain_img_size=384,
                embed_dims=192,
                depths=[2, 2, 18, 2],
                num_heads=[6, 12, 24, 48],
                window_size=12,
                mlp_ratio=4,
                qkv_bias=True,
                qk_scale=None,
                drop_rate=0.0,
                attn_drop_rate=0.0,
                drop_path_rate=0.3,
                patch_norm=True,
                out_indices=(1, 2, 3),
                with_cp=False,
                convert_weights=True,
                init_cfg=None),
            neck=dict(in_channels=[384, 768, 1536]))),
    online_checkpoint='work_dirs/idol_swin-l-p4-w12-384_8xb4-12k_'
    'youtubevis2021/iter_12000.pth')

val_evaluator = dict(
    outfile_prefix='./work_dirs/vita-teacher_swin-l_youtubevis2021/results')
test_evaluator = val_evaluator
