# OOKD Table 6 ablation: the "token average" teacher. f_off of an instance
# is the mean of its frame queries (OOKD paper, Sec. 4.3): no
# parameters, so nothing to train (no train loop / optimiser here). During
# distillation the frame tokens are assigned to the clip's GT instances;
# for `tools/test.py` (offline evaluation) the frozen IDOL's own tracker
# assigns them.
_base_ = ['./vita-teacher_r50_8xb2-20k_youtubevis2021.py']

model = dict(
    aggregator=dict(_delete_=True, type='TokenAverageAggregator'),
    loss_sim=None,  # token average learns no association
    loss_assoc=None)

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_evaluator = dict(
    outfile_prefix='./work_dirs/token-average-teacher_r50_youtubevis2021/'
    'results')
test_evaluator = val_evaluator
