r"""The ``cloud`` live source: frames ``POST``\ ed to ``/images``, a bounded number in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from posepipe.result import Person
from posepipe.ui.client import ApiProblem
from posepipe.ui.live_scaling import encode_jpeg, scale_down, unscale
from posepipe.ui.live_types import MAX_IN_FLIGHT_LIMIT, ImagePoster, LiveOptions, PoseAnswer, RGBFrame


class CloudFrameSender:
    """JPEG frames to ``POST /images``, at most ``max_in_flight`` at once; no queue.

    :meth:`offer` returns at once: ``False`` (the frame is dropped) when every slot is busy,
    else ``True``, the frame being encoded and sent on a pool thread, its persons handed to
    ``deliver`` (or the failure's message to ``on_error``) when the answer comes.
    """

    def __init__(
        self,
        client: ImagePoster,
        deliver: Callable[[PoseAnswer], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.client = client
        self._deliver = deliver
        self._on_error = on_error
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT_LIMIT, thread_name_prefix="posepipe-cloud")

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def offer(self, rgb: RGBFrame, seq: int, captured_s: float, options: LiveOptions) -> bool:
        """Send this frame if a slot is free (``True``), else drop it (``False``)."""
        with self._lock:
            if self._in_flight >= options.max_in_flight:
                return False
            self._in_flight += 1
        try:
            self._pool.submit(self._send, rgb, seq, captured_s, options)
        except RuntimeError:  # the pool was shut down: the stream is over
            self._release()
            return False
        return True

    def _send(self, rgb: RGBFrame, seq: int, captured_s: float, options: LiveOptions) -> None:
        try:
            started = time.perf_counter()
            small, factor = scale_down(rgb, options.max_side)
            data = encode_jpeg(small, options.jpeg_quality)
            encode_s = time.perf_counter() - started
            answer = self.client.post_image(
                data,
                "image/jpeg",
                max_poses=options.max_poses,
                model=options.model,
                detector=options.detector,
            )
            persons = unscale([Person.from_dict(p) for p in answer.persons], factor)
            self._deliver(
                PoseAnswer(
                    seq=seq,
                    captured_s=captured_s,
                    source="cloud",
                    persons=persons,
                    encode_s=encode_s,
                    network_s=answer.network_s,
                    inference_s=answer.inference_s or 0.0,
                )
            )
        except ApiProblem as exc:
            self._on_error(str(exc))
        except Exception as exc:  # a thread's failure must reach the page, not vanish
            self._on_error(f"The cloud path failed on a frame: {type(exc).__name__}: {exc}")
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
