"""``posepipe serve --host``: any loopback address, nothing else (the stack has no authentication)."""

from __future__ import annotations

import pytest
from posepipe.local_stack.stack import LocalStack, is_loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_a_host_that_is_not_loopback_is_refused_before_anything_starts(host: str) -> None:
    stack = LocalStack(host=host)
    with pytest.raises(ValueError, match=f"loopback only, not on {host}"):
        stack.start()
    assert stack.s3_url == f"http://{host}:4566"  # nothing was started to stop


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "localhost"])
def test_every_loopback_address_is_accepted(host: str) -> None:
    assert is_loopback(host)
