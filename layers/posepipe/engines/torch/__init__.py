"""The torch engine: MediaPipe BlazePose (detector + Full landmarks) ported to PyTorch, batched.

Parts (each its own module):

- ``tflite_reader`` / ``graph_module``: the two TFLite models of the ``.task`` bundle read at load
  time and rebuilt as PyTorch modules (:class:`posepipe.engines.torch.network_contract.DetectorModel`,
  :class:`posepipe.engines.torch.network_contract.LandmarkModel`), NCHW, fp32 on CPU, fp16 on CUDA.
- ``anchors``, ``detection``: letterboxing, SSD anchors, box and keypoint decoding, weighted NMS.
- ``roi``, ``landmarks``: regions of interest (from detections, and from landmarks while
  tracking), the affine 256x256 crop, landmark and world-landmark decoding, projection back.
- ``image_engine``: ``TorchPoseEngine``, the whole IMAGE-mode pipeline (MediaPipe's
  PoseLandmarker without tracking), batched across images, giving posepipe's ``Person``.
- ``estimator``: ``TorchPoseEstimator``, the engine behind ``posepipe.engines.base.PoseEstimator``'s
  interface (``open_pose_engine`` with ``engine="torch"``): device, dtype, IMAGE and VIDEO mode.
- ``video_engine``: VIDEO mode (MediaPipe's tracking), several streams advanced as one batch.
- ``batcher``: ``FrameBatcher``, the current frames of concurrent streams (the endpoint's chunks
  in flight, each in its own thread) gathered into one batch after a short queue delay.
- ``parity``: the figures the parity tests and ``bench/gpu_throughput.py --parity`` compare.

The model contract shared by all of them is in :mod:`posepipe.engines.torch.network_contract`.
"""
