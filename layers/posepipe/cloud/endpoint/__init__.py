"""posepipe's SageMaker real-time inference server: ``/ping`` and ``/invocations`` (one video chunk).

A thin adapter around ``posepipe.video.stages.infer_chunk``; the contract is docs/CLOUD.md's
"Endpoint invocation", the details :mod:`posepipe.cloud.endpoint.app`. ``create_app`` makes the Flask
app, ``start_background_server`` serves it from a thread, ``python -m posepipe.cloud.endpoint serve``
runs gunicorn as SageMaker's ``docker run IMAGE serve`` needs.
"""
