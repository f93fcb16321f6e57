"""Motion analysis of posepipe results: per person, trajectories cleaned by explicit steps
(:mod:`~posepipe.analysis.cleaning`), joint and segment angles with documented conventions
(:mod:`~posepipe.analysis.angles`), segment lengths and the hips' speed
(:mod:`~posepipe.analysis.kinematics`), all put together by :mod:`~posepipe.analysis.motion`.
The files that biomechanics tools read are written by :mod:`posepipe.export`."""
