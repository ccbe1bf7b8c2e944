# IDOL Swin-L on YouTube-VIS 2021 (docs/hyperparameters.md §2 backbone, same
# recipe as R-50, §10). Swin-L: embed 192, depths [2, 2, 18, 2], heads
# [6, 12, 24, 48], window 12, pre-train size 384, drop path 0.3.
_base_ = ['./idol_r50_8xb4-12k_youtubevis2021.py']

model = dict(
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
            out_indices=(1, 2, 3),  # strides 8 / 16 / 32
            with_cp=False,
            convert_weights=True,
            # No download: a local ImageNet-22k Swin-L checkpoint, e.g.
            # init_cfg=dict(
            #     type='Pretrained',
            #     checkpoint='checkpoints/swin_large_patch4_window12_384_22k.pth'),
            init_cfg=None),
        neck=dict(in_channels=[384, 768, 1536])))

val_evaluator = dict(
    outfile_prefix='./work_dirs/idol_swin-l_youtubevis2021/results')
test_evaluator = val_evaluator
# IDOL COCO pseudo-video pre-training of Swin-L (local file):
# load_from = 'checkpoints/idol_swinl_cocopretrain.pth'
