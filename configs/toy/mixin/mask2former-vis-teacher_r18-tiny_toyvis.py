# The toy Mask2Former-VIS (./mask2former-vis_r18-tiny_1xb2-toyvis.py) as an
# OOKD teacher: the same model and checkpoint behind the thin adapter
# Mask2FormerVISTeacher (mmdet's Mask2FormerVideo + `forward_clip` for the
# distiller and `video_knowledge` for the knowledge bank; no parameter of
# its own). Train the Mask2Former-VIS config, then point the distiller
# (./ookd_r18-tiny_1xb2-toyvis_mask2former-teacher.py) or
# tools/analysis/build_knowledge_bank.py at this config and that checkpoint.
_base_ = ['./mask2former-vis_r18-tiny_1xb2-toyvis.py']

# the trained checkpoint holds every weight: no pre-training is loaded first
model = dict(type='Mask2FormerVISTeacher', backbone=dict(init_cfg=None))
