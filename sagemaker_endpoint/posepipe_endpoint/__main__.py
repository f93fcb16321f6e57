"""``python -m posepipe_endpoint serve``: see :mod:`posepipe_endpoint.serve`."""

from posepipe_endpoint.serve import main

raise SystemExit(main())
