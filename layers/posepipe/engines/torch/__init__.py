"""The torch engine: MediaPipe BlazePose (detector + Full landmarks) ported to PyTorch, batched.

Parts (each its own module):

- ``tflite_reader`` / ``graph_module``: the two TFLite models of the ``.task`` bundle read at load
  time and rebuilt as PyTorch modules (:class:`posepipe.engines.torch.network_contract.DetectorForward`,
  :class:`posepipe.engines.torch.network_contract.LandmarkForward`), NCHW, fp32 on CPU, fp16 on CUDA.
- ``anchors``, ``detection``: letterboxing, SSD anchors, box and keypoint decoding, weighted NMS.
- ``roi``, ``landmark_decoding``: regions of interest (from detections, and from landmarks while
  tracking), the affine 256x256 crop, landmark and world-landmark decoding, projection back.
- the three parts (:mod:`posepipe.engines.parts`): ``person_detector`` (``BlazePoseDetector``),
  ``landmark_model`` (``BlazePoseLandmarkModel``) and ``video_tracking``
  (``VideoRegionTracker``: VIDEO mode, MediaPipe's tracking, several streams advanced as one
  batch), with ``mediapipe_filters`` (MediaPipe's in-graph landmark smoothing).
- ``blazepose``: ``TorchBlazePose``, the detector and the landmark model composed: the whole
  IMAGE-mode pipeline (MediaPipe's PoseLandmarker without tracking), batched across images.
- ``estimator``: ``TorchPoseEstimator``, the engine behind ``posepipe.engines.base.PoseEstimator``'s
  interface (``open_pose_engine`` with ``engine="torch"``): device, dtype, IMAGE and VIDEO mode.
- ``batcher``: ``FrameBatcher``, the current frames of concurrent streams (the endpoint's chunks
  in flight, each in its own thread) gathered into one batch after a short queue delay.
- ``parity``: the figures the parity tests and ``bench/gpu_throughput.py --parity`` compare.

The model contract shared by all of them is in :mod:`posepipe.engines.torch.network_contract`.
"""
