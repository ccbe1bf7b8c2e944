# OOKD with a teacher from another family (issue #17): mmdet's own
# Mask2Former-VIS R-50 (offline, trained on the same YouTube-VIS 2021 data,
# with Minor-Paste: ./mask2former-vis_r50_8xb2-8e_youtubevis2021_minor-paste.py)
# distils into our IDOL R-50 student. Everything else is the flagship
# (configs/ookd_r50.py: QFA, the cosine KD loss, Minor-Paste, IDOL's data
# and schedule).
#
# * The teacher is mmdet's model behind the thin adapter
#   Mask2FormerVISTeacher (`cfg_options` switch the type of the trained
#   config's model: mmdet's Mask2FormerVideo + `forward_clip`, the same
#   checkpoint keys); its COCO / ImageNet initialisation is switched off:
#   the trained checkpoint holds every weight. The knowledge bank takes the
#   same teacher (mmookd.apis.build_knowledge_bank with the config's
#   model.type set to Mask2FormerVISTeacher, docs/mixin.md).
# * Its features (Mask2Former's decoder queries, 256 channels) are not in
#   the student's space (IDOL's contrastive embedding, 256 channels): the
#   KD loss learns a linear projection on the student side (FitNets),
#   trained by the KD loss only. It is saved in training checkpoints (for
#   resuming) and dropped from the exported student:
#
#     python -m mmookd.apis.export_student \
#         work_dirs/<this config>/iter_12000.pth student.pth
#
#   which loads into configs/idol/idol_r50_8xb4-12k_youtubevis2021.py.
#
#   tools/dist_train.sh configs/mixin/ookd_r50_8xb4-12k_youtubevis2021_mask2former-teacher.py 8  # noqa: E501
_base_ = ['../ookd_r50.py']

model = dict(
    teacher=dict(
        _delete_=True,
        config='{{ fileDirname }}/'
        'mask2former-vis_r50_8xb2-8e_youtubevis2021_minor-paste.py',
        # mmdet's checkpoint hook saves iter_8000.pth (and the last one)
        checkpoint='work_dirs/mask2former-vis_r50_8xb2-8e_youtubevis2021_'
        'minor-paste/iter_8000.pth',
        cfg_options={
            'type': 'Mask2FormerVISTeacher',
            'init_cfg': None,
            'backbone.init_cfg': None
        }),
    # QFA reads the teacher's class probabilities as sigmoid logits
    # (Mask2FormerVISTeacher converts its softmax), as for our own teacher
    assigner=dict(type='QFAAssigner', lambda_b=1.0, cls_mode='sigmoid'),
    loss_kd=dict(
        _delete_=True,
        type='ProjectedCosineKDLoss',
        in_channels=256,  # IDOL's embedding
        out_channels=256,  # Mask2Former-VIS feat_channels
        loss_weight=1.0))

val_evaluator = dict(
    outfile_prefix='./work_dirs/ookd_r50_mask2former-teacher/results')
test_evaluator = val_evaluator
