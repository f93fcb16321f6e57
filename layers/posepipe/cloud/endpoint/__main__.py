"""``python -m posepipe.cloud.endpoint serve``: see :mod:`posepipe.cloud.endpoint.serve`."""

from posepipe.cloud.endpoint.serve import main

raise SystemExit(main())
