# Evaluation with paper A's temporal consistency (TC) next to YouTube-VIS AP
# (issue #6): test any toy OOKD / IDOL checkpoint with
#   python tools/test.py configs/toy/companion/ookd-eval-tc_r18-tiny_1xb2-toyvis.py CKPT
# TC needs flow between consecutive frames. Here it comes from OpenCV's DIS
# (no weights, runs anywhere; what docs/benchmarks.md reports). For RAFT,
# as paper A, use
#   flow=dict(type='RAFTFlowProvider', arch='raft_small',
#             checkpoint='checkpoints/flow/raft_small_C_T_V2-01064c6d.pth')
# (a local file: save torchvision's raft_small C_T_V2 state dict there).
_base_ = ['../ookd_r18-tiny_1xb2-toyvis.py']

data_root = 'data/toyvis/'
subsets = dict(
    short=data_root + 'annotations/toyvis_val.json',
    long=data_root + 'annotations/toyvis_long_val.json')
val_evaluator = [
    dict(type='YTVISMetric', ann_file=subsets),
    dict(
        type='TemporalConsistencyMetric',
        flow=dict(type='OpenCVFlowProvider', method='dis', preset='medium'),
        occlusion='fb',
        ann_file=subsets),
]
test_evaluator = val_evaluator
