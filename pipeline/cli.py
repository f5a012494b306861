"""The one exception type for user-caused errors, and the wrapper every stage's entry point uses."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix: bad input data, a bad param, a missing file.

    The message names the file, column or key and says what is wrong.
    """


def run(main: Callable[[], None]) -> None:
    """Run a stage's `main`, turning a `UserError` into one line on stderr and exit status 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
