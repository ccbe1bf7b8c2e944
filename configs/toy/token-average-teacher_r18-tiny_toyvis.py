# OOKD Table 6 ablation on ToyVIS: the frozen toy IDOL with the
# parameter-free token average instead of the VITA aggregator (no
# training: evaluate it with tools/test.py, or use it as the distiller's
# teacher).
_base_ = ['./vita-teacher_r18-tiny_1xb2-toyvis.py']

model = dict(
    aggregator=dict(_delete_=True, type='TokenAverageAggregator'),
    loss_sim=None,  # token average learns no association
    loss_assoc=None)

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
