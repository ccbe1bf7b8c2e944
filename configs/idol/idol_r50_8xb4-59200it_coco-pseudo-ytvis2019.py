# IDOL R-50 pre-training on COCO pseudo key/reference pairs, YouTube-VIS 2019
# vocabulary (docs/hyperparameters.md §10 step 2): the 2021 recipe with the
# coco2ytvis2019 category table (classes = the 40 YouTube-VIS 2019 ones). An
# option, not the official recipe: IDOL pre-trains on all 80 COCO classes
# (idol_r50_8xb4-59200it_coco-pseudo.py).
#
# Step 3 starts from this run's final checkpoint: in
# configs/idol/idol_r50_8xb4-12k_youtubevis2019.py set
#   load_from = 'work_dirs/idol_r50_8xb4-59200it_coco-pseudo-ytvis2019/iter_59200.pth'
_base_ = './idol_r50_8xb4-59200it_coco-pseudo-ytvis2021.py'

train_dataloader = dict(dataset=dict(category_map='coco2ytvis2019'))
