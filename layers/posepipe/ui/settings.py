"""What the web app's sidebar chooses: the API to call, how to authenticate, and the options.

``posepipe ui`` hands its command-line choices to the Streamlit script through environment
variables (:data:`ENV_API_URL` and the others), read by :meth:`UiSettings.from_env` as the
sidebar's initial values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from posepipe.assets.catalogue import pose_model_names
from posepipe.engines.base import DETECTORS as ENGINE_DETECTORS
from posepipe.engines.base import MULTIPOSE

AuthKind = Literal["none", "iam", "apikey"]
LiveSource = Literal["cloud", "local"]

DEFAULT_API_URL = "http://127.0.0.1:3000"
# What POST /images takes as ?model and ?detector (the API refuses those it has not built).
POSE_MODELS: tuple[str, ...] = tuple(pose_model_names())
# MoveNet MultiPose's detector is the model itself: choosing the model is enough.
DETECTORS: tuple[str, ...] = tuple(name for name in ENGINE_DETECTORS if name != MULTIPOSE)
MAX_POSES_LIMIT = 10  # the image API's own bound on ?max_poses

ENV_API_URL = "POSEPIPE_UI_API_URL"
ENV_AUTH = "POSEPIPE_UI_AUTH"
ENV_PROFILE = "POSEPIPE_UI_PROFILE"
ENV_REGION = "POSEPIPE_UI_REGION"
ENV_API_KEY = "POSEPIPE_API_KEY"


@dataclass(frozen=True)
class ApiAuth:
    """How requests to the API are authenticated.

    ``none``: not at all (the local stack). ``iam``: SigV4-signed for ``execute-api`` with the
    credentials of the AWS ``profile`` (the default chain when ``None``) in ``region`` (the
    profile's when ``None``). ``apikey``: ``api_key`` sent as the ``x-api-key`` header.
    """

    kind: AuthKind = "none"
    profile: str | None = None
    region: str | None = None
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(AuthKind):
            raise ValueError(f"auth must be one of {', '.join(get_args(AuthKind))}, not {self.kind!r}")

    def describe(self) -> str:
        """A few words for the page: "no authentication", "IAM (SigV4, profile dev)", "API key"."""
        if self.kind == "iam":
            where = ", ".join(
                part
                for part in (
                    f"profile {self.profile}" if self.profile else "",
                    f"region {self.region}" if self.region else "",
                )
                if part
            )
            return f"IAM (SigV4{', ' + where if where else ''})"
        if self.kind == "apikey":
            return "API key"
        return "no authentication"


@dataclass(frozen=True)
class UiSettings:
    """The app's settings; every field has the default the app starts with."""

    api_url: str = DEFAULT_API_URL
    auth: ApiAuth = field(default_factory=ApiAuth)
    max_poses: int = 4
    model: str = ""  # POST /images ?model= ("": the API's own model)
    detector: str = ""  # POST /images ?detector= ("": the API's own detector)
    live_source: LiveSource = "cloud"
    jpeg_quality: int = 80
    max_in_flight: int = 3
    smoothing: bool = True

    def __post_init__(self) -> None:
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must start with http:// or https://, not {self.api_url!r}")
        if not 1 <= self.max_poses <= MAX_POSES_LIMIT:
            raise ValueError(f"max_poses must be from 1 to {MAX_POSES_LIMIT}, not {self.max_poses}")
        if self.live_source not in get_args(LiveSource):
            raise ValueError(f"live_source must be cloud or local, not {self.live_source!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be from 1 to 100, not {self.jpeg_quality}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {self.max_in_flight}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> UiSettings:
        """The settings ``posepipe ui`` passed (empty or missing variables keep the defaults)."""
        kind = environ.get(ENV_AUTH) or "none"
        if kind not in get_args(AuthKind):
            raise ValueError(f"{ENV_AUTH} must be one of {', '.join(get_args(AuthKind))}, not {kind!r}")
        auth = ApiAuth(
            kind=cast(AuthKind, kind),
            profile=environ.get(ENV_PROFILE) or None,
            region=environ.get(ENV_REGION) or None,
            api_key=environ.get(ENV_API_KEY) or None,
        )
        return cls(api_url=(environ.get(ENV_API_URL) or DEFAULT_API_URL).rstrip("/"), auth=auth)
