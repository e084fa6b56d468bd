"""What every stage's ``main`` shares: one-line errors and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


def exit_on_error(main: Callable[[], None]) -> Callable[[], None]:
    """Turn a ``ValueError`` (bad data or parameter) into ``error: ...`` and exit status 1."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)

    return wrapper
