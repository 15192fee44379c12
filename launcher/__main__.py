"""`python -m launcher [run|stop]` (see launcher/__init__.py)."""

import sys

from launcher.supervisor import main

sys.exit(main())
