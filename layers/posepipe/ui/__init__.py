"""``posepipe ui``: a Streamlit web app over posepipe's API (image, video and live webcam modes).

The app is a client of the HTTP API (``posepipe serve``'s at http://127.0.0.1:3000 by default, or
a deployed stack's), so everything it shows went through the real pipeline. The modules other
than ``app`` and the ``*_mode`` pages know nothing of Streamlit: ``settings`` (what the sidebar
chooses), ``client`` (the HTTP client), ``monitor`` (frame timings), ``results`` (tables,
drawings and time series of ``posepipe.pose/2`` results, with angles and cleaned trajectories
from the core's :mod:`posepipe.analysis`).
"""
