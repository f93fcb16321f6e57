"""``python -m posepipe.cli``: the ``posepipe`` command."""

import sys

from posepipe.cli.main import main

sys.exit(main())
