"""``python -m texnet.app``: serve the web app (see texnet.app.launch for the options)."""

import sys

from texnet.app.launch import main

sys.exit(main())
