# Paper Table 6: the teacher's aggregation module replaced by the token
# average (mean of an instance's frame queries over the clip). Its only
# weights are the frozen IDOL's (its online_checkpoint), so no teacher
# checkpoint.
_base_ = ['../ookd_r50_8xb4-12k_youtubevis2022.py']

model = dict(
    teacher=dict(
        _delete_=True,
        config='{{ fileDirname }}/../../teacher/'
        'token-average-teacher_r50_youtubevis2021.py',
        checkpoint=None))
