"""What every domain's command line shares: a user's mistake becomes one line, not a traceback."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_command(prog: str, command: Callable[[], int]) -> int:
    """Runs ``command`` and returns its exit status. A bad preset, data file, checkpoint or path (the
    project raises ValueError subclasses naming the file or field, or FileNotFoundError) prints one line,
    ``PROG: error: ...``, and returns 2. With CTBENCH_TRACEBACK=1 the exception propagates, for debugging."""
    try:
        return command()
    except (ValueError, FileNotFoundError) as err:
        if os.environ.get("CTBENCH_TRACEBACK"):
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
