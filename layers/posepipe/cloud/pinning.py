"""A job reads the very object that started it (docs/CLOUD.md, "Pinned inputs").

A video job is started for one version of one object: its ETag, and its version id where the
input bucket keeps versions (the deployed one does, and so does ``posepipe serve``'s). Every read
of the video (video_split's header and download, each chunk on the endpoint, the aggregate's
render) names that version: ``VersionId`` when there is one, so that a re-upload of the key while
the job runs changes nothing for it, else ``IfMatch`` on the ETag, so that the job is refused
(``superseded``) rather than mixing two videos. :class:`PinnedObject` carries the pin;
:meth:`PinnedObject.get_args` gives the arguments of ``GetObject``/``HeadObject``/``download_file``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from posepipe.cloud.storage import s3_error_code
from posepipe.errors import InputError

_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})


@dataclass(frozen=True)
class PinnedObject:
    """One version of ``s3://bucket/key``: its ``etag`` (quoted or not) and, in a versioned
    bucket, its ``version_id``."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None

    @property
    def bare_etag(self) -> str:
        """The ETag without the quotes S3 puts around it (as events give it)."""
        return self.etag.strip('"')

    @property
    def quoted_etag(self) -> str:
        return f'"{self.bare_etag}"'

    def is_held_by(self, head: Mapping[str, Any]) -> bool:
        """Whether a ``HeadObject`` answer for the key is of this version."""
        return str(head["ETag"]).strip('"') == self.bare_etag

    def get_args(self) -> dict[str, str]:
        """``VersionId``, or ``IfMatch`` when the bucket keeps no versions."""
        if self.version_id and self.version_id != "null":
            return {"VersionId": self.version_id}
        return {"IfMatch": self.quoted_etag}

    def describe(self) -> dict[str, str | None]:
        """What outputs record of the input: ``{"etag", "version_id"}``."""
        return {"etag": self.bare_etag, "version_id": self.version_id}


def is_changed(error: BaseException) -> bool:
    """Whether S3 refused a read because the object is no longer the pinned one (412)."""
    return isinstance(error, ClientError) and s3_error_code(error) in _CHANGED_CODES


@contextmanager
def superseded_is_input_error(pin: PinnedObject) -> Iterator[None]:
    """A read of an object replaced since its job started, as an :class:`InputError` (``superseded``)."""
    try:
        yield
    except ClientError as err:
        if is_changed(err):
            raise InputError(
                pin.key,
                "the object was uploaded again since this job started (the bucket keeps no versions "
                "to read the one it was started for); the newer upload is a job of its own",
                code="superseded",
            ) from err
        raise
