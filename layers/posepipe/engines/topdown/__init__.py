"""Top-down multi-person pose: a general person detector finds everyone, the pose model runs on
each person's region, and duplicates are suppressed
(:class:`posepipe.engines.topdown.estimator.TopDownPoseEstimator`).

Parts, each a :mod:`posepipe.engines.parts` role: :mod:`~posepipe.engines.topdown.person_boxes`
(CenterNet on ONNX Runtime, the person detector), :mod:`~posepipe.engines.topdown.regions`
(a person's square, padded region, from a box or from landmarks, as BlazePose wants it) and
:mod:`~posepipe.engines.topdown.blazepose_landmarks` (BlazePose's landmark network on LiteRT, the
landmark model). Nothing here needs torch, so the image Lambda can run it.
"""
