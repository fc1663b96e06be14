"""``python -m dicomhub``: the same as the ``dicomhub`` command."""

from .cli import main

raise SystemExit(main())
