from __future__ import annotations

import sys

from monai_singanseg.cli import main

if __name__ == "__main__":
    sys.exit(main())
