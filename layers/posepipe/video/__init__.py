"""Video pose estimation in three stages (split, infer, aggregate) and the runners that wire them,
on this machine (:mod:`posepipe.video.local`) or in AWS (:mod:`posepipe.cloud.handlers.aggregate`)."""
