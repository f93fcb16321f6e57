"""posepipe: human pose estimation (MediaPipe BlazePose) for images and videos, locally or on AWS."""

__version__ = "0.1.0"
