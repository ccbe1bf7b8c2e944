# OOKD with a teacher from another family (issue #17): mmdet's own
# Mask2Former-VIS (offline, trained on the same ToyVIS data:
# ./mask2former-vis_r18-tiny_1xb2-toyvis.py) distils into our toy IDOL
# student. Everything else is the toy OOKD student
# (../ookd_r18-tiny_1xb2-toyvis.py: QFA, Minor-Paste, the same data and
# schedule), so the benchmark row differs from it by the teacher only.
#
# * the teacher is mmdet's model behind the thin adapter
#   Mask2FormerVISTeacher (`forward_clip`; its checkpoint is mmdet's, the
#   adapter adds no parameter);
# * its features (32 channels, Mask2Former's decoder space) are not the
#   student's (64, IDOL's contrastive embedding): the KD loss learns a
#   projection on the student side (FitNets), trained by the KD loss only
#   and dropped from the exported student
#   (`python -m mmookd.apis.export_student`), which loads into plain IDOL.
#
# Order: train ./mask2former-vis_r18-tiny_1xb2-toyvis.py, then this config
# (or build a knowledge bank from ./mask2former-vis-teacher_r18-tiny_toyvis.py
# and that checkpoint first and set model.knowledge_bank).
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

model = dict(
    teacher=dict(
        _delete_=True,
        # mmdet's Mask2FormerVideo + the teacher interface
        config='{{ fileDirname }}/mask2former-vis-teacher_r18-tiny_toyvis.py',
        # the default work_dir of `tools/train.py` for the Mask2Former-VIS
        # config (the teacher config's base)
        checkpoint='work_dirs/mask2former-vis_r18-tiny_1xb2-toyvis/'
        'iter_600.pth'),
    # eq. 4 on proj(f) vs the teacher's f_off: student embedding width 64
    # -> the teacher's feat_channels 32 (FitNets-style regressor)
    loss_kd=dict(
        _delete_=True,
        type='ProjectedCosineKDLoss',
        in_channels=64,
        out_channels=32,
        loss_weight=1.0))
