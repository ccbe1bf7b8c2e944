# IDOL, ResNet-50 (docs/hyperparameters.md §2-11: official defaults;
# YouTube-VIS 2019).
# Per-frame Deformable DETR (300 queries, 4 levels, 6 + 6 layers, iterative
# box refinement, not two-stage) + CondInst-style dynamic mask head on the
# encoder memory + contrastive embedding; online memory-bank tracker.
num_classes = 40  # YouTube-VIS 2019 / 2021 (OVIS: 25)
num_queries = 300
embed_dims = 256
num_levels = 4
num_dec_layers = 6

model = dict(
    type='IDOL',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),  # §2 size divisibility 32
    detector=dict(
        type='DeformableDETR',
        num_queries=num_queries,
        num_feature_levels=num_levels,
        with_box_refine=True,
        as_two_stage=False,
        backbone=dict(
            type='ResNet',
            depth=50,
            num_stages=4,
            out_indices=(1, 2, 3),  # res3-res5 (strides 8/16/32)
            frozen_stages=1,  # D2 FREEZE_AT=2: stem + res2 frozen
            norm_cfg=dict(type='BN', requires_grad=False),  # FrozenBN
            norm_eval=True,
            style='pytorch',
            # No download: point this at a local ImageNet (or IDOL COCO
            # pre-train) checkpoint, e.g. converted torchvision weights:
            # init_cfg=dict(type='Pretrained',
            #               checkpoint='checkpoints/resnet50-0676ba61.pth'),
            init_cfg=None),
        neck=dict(
            type='ChannelMapper',
            in_channels=[512, 1024, 2048],
            kernel_size=1,
            out_channels=embed_dims,
            act_cfg=None,
            norm_cfg=dict(type='GN', num_groups=32),
            # IDOL's input_proj convs keep their bias (GN over 32 groups of
            # 8 channels does not cancel it), so official weights load.
            bias=True,
            num_outs=num_levels),  # 4th level: 3x3 s2 conv on raw C5
        encoder=dict(
            num_layers=6,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=embed_dims,
                    num_heads=8,
                    num_levels=num_levels,
                    num_points=4,
                    dropout=0.1,
                    batch_first=True),
                ffn_cfg=dict(
                    embed_dims=embed_dims,
                    feedforward_channels=1024,
                    ffn_drop=0.1))),
        decoder=dict(
            num_layers=num_dec_layers,
            return_intermediate=True,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=embed_dims,
                    num_heads=8,
                    dropout=0.1,
                    batch_first=True),
                cross_attn_cfg=dict(
                    embed_dims=embed_dims,
                    num_heads=8,
                    num_levels=num_levels,
                    num_points=4,
                    dropout=0.1,
                    batch_first=True),
                ffn_cfg=dict(
                    embed_dims=embed_dims,
                    feedforward_channels=1024,
                    ffn_drop=0.1)),
            post_norm_cfg=None),
        positional_encoding=dict(
            num_feats=embed_dims // 2, normalize=True, offset=-0.5),
        bbox_head=dict(
            type='IDOLHead',
            num_classes=num_classes,
            embed_dims=embed_dims,
            num_reg_fcs=2,  # box MLP 256-256-256-4
            num_embed_fcs=3,  # embedding MLP 256-256-256-256 (§5)
            embed_channels=256,
            loss_cls=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=2.0),
            loss_bbox=dict(type='L1Loss', loss_weight=5.0),
            loss_iou=dict(type='GIoULoss', loss_weight=2.0),
            loss_reid=dict(type='MultiPosCrossEntropyLoss', loss_weight=2.0),
            loss_reid_aux=dict(
                type='CosineL2AuxLoss', neg_pos_ratio=10, loss_weight=3.0)),
        train_cfg=dict(
            # §7: focal cost 1 + GIoU cost 3 + centre prior, dynamic k
            assigner=dict(
                type='DynamicKAssigner',
                match_costs=[
                    dict(
                        type='FocalLossCost',
                        alpha=0.25,
                        gamma=2.0,
                        eps=1e-8,
                        weight=1.0),
                    dict(type='IoUCost', iou_mode='giou', weight=3.0)
                ],
                center_radius=2.5,
                expanded_stride=32,
                outside_cost=100.0,
                non_candidate_cost=10000.0,
                candidate_topk=10),
            # §8: positives top-10, negatives = complement of top-100
            contrast_selector=dict(
                type='ContrastiveSelector',
                assigner=dict(
                    type='DynamicKAssigner',
                    match_costs=[
                        dict(
                            type='FocalLossCost',
                            alpha=0.25,
                            gamma=2.0,
                            eps=1e-8,
                            weight=1.0),
                        dict(type='IoUCost', iou_mode='giou', weight=3.0)
                    ],
                    center_radius=2.5,
                    expanded_stride=32,
                    outside_cost=100.0,
                    non_candidate_cost=10000.0),
                pos_topk=10,
                neg_topk=100)),
        test_cfg=dict()),
    mask_head=dict(
        type='IDOLMaskHead',
        in_channels=embed_dims,
        num_mask_levels=3,  # memory levels 0-2 (strides 8/16/32)
        mask_feat_stride=8,
        mask_out_stride=4,
        branch_mid_channels=64,
        mask_feat_channels=8,
        num_dyn_layers=3,  # (8 + 2) -> 8 -> 8 -> 1: 169 params
        dyn_channels=8,
        rel_coord=True,
        controller_layers=3,  # 256 -> 256 -> 256 -> 169
        loss_mask=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0)),
    deep_supervision=True,
    tracker=dict(
        type='IDOLTracker',
        init_score_thr=0.2,
        addnew_score_thr=0.2,  # OVIS 0.3
        match_score_thr=0.5,
        mask_nms_thr=0.5,  # OVIS 0.3
        nms_thr_post=0.05,
        memory_len=3,
        memo_tracklet_frames=10,
        memo_momentum=0.8,
        long_match=True,
        temporal_weight=True,
        frame_weight=True,
        match_metric='bisoftmax'),
    assembler=dict(
        type='VideoTrackAssembler',
        score_type='mean',
        multi_cls=True,
        apply_cls_thres=0.05,
        noise_filter=True,
        noise_filter_after=8,
        noise_absent_frames=2,
        noise_min_frames=3),
    test_cfg=dict(
        filter_detections=True, select_thr=0.1, nms_iou_thr=0.9, mask_thr=0.5))
