import sys

from wdmt.cli import main

sys.exit(main())
