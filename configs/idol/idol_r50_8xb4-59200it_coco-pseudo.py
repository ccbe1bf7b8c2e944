# IDOL R-50 pre-training on COCO pseudo key/reference pairs, the official
# recipe (step 2 of VNext's projects/IDOL/IDOL.md; VNext
# projects/IDOL/configs/coco_pretrain/r50_coco_sequence.yaml): all 80 COCO
# classes (IDOL.NUM_CLASSES 80), every non-crowd annotation of
# coco_2017_train, images without one dropped (FILTER_EMPTY_ANNOTATIONS).
# Each image is augmented twice, independently, into a key and a reference
# view with instance ids 1..N. 8 GPUs x 4 pairs, AdamW 2e-4, 59,200
# iterations, steps at 22,200 / 44,400. The augmentation, schedule and
# optimiser are shared with the YouTube-VIS-vocabulary variants
# (idol_r50_8xb4-59200it_coco-pseudo-ytvis20{19,21}.py, an option that keeps
# a 40-class classifier), which is why this config inherits from one.
#
# Step 3 (fine-tuning) starts from this run's final checkpoint, e.g. in
# configs/idol/idol_r50_8xb4-12k_youtubevis2021.py set
#   load_from = 'work_dirs/idol_r50_8xb4-59200it_coco-pseudo/iter_59200.pth'
# The 80-class classifier (cls_branches) does not fit the 40 (OVIS: 25)
# classes: mmengine's non-strict load skips those tensors with a "size
# mismatch" warning and keeps their fresh initialisation, as detectron2 does
# for the official cocopretrain_*.pth; every other weight is loaded. The
# released cocopretrain_R50.pth converts with
#   python tools/model_converters/vnext_idol_to_mmookd.py \
#       cocopretrain_R50.pth checkpoints/idol_r50_cocopretrain.pth \
#       --config configs/idol/idol_r50_8xb4-59200it_coco-pseudo.py
_base_ = './idol_r50_8xb4-59200it_coco-pseudo-ytvis2021.py'

num_classes = 80
model = dict(detector=dict(bbox_head=dict(num_classes=num_classes)))

# Identity over the 80 COCO classes (mmdet's order = the category-id order
# = detectron2's contiguous ids, so official 80-class heads line up).
train_dataloader = dict(dataset=dict(category_map='coco'))
