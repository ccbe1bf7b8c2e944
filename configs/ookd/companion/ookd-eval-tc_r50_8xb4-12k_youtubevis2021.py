# Evaluation with paper A's temporal consistency (TC) next to the
# YouTube-VIS submission (issue #6). YouTube-VIS 2021 valid has no public GT:
# AP comes from the server (format_only), TC needs no GT and is computed
# here. TC needs flow between consecutive frames: RAFT from a local file
# (never downloaded; save torchvision's raft_small C_T_V2 state dict there).
_base_ = ['../../ookd_r50.py']

val_evaluator = [
    dict(
        type='YTVISMetric',
        format_only=True,
        outfile_prefix='./work_dirs/ookd_r50/results'),
    dict(
        type='TemporalConsistencyMetric',
        flow=dict(
            type='RAFTFlowProvider',
            arch='raft_small',
            checkpoint='checkpoints/flow/raft_small_C_T_V2-01064c6d.pth'),
        occlusion='fb'),
]
test_evaluator = val_evaluator
