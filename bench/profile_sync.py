"""`python -m bench.profile_sync OUT.prof ARGS...`: `etl ARGS...` under cProfile, every thread.

`python -m cProfile -o OUT -m etl sync ...` sees only the main thread, i.e. the event loop;
`etl sync` normalizes and loads in a worker thread (`asyncio.to_thread`), so that half of
the work would be missing. This driver gives every thread its own profiler (by wrapping
`threading.Thread.run`) and merges them with the main thread's into one stats file.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
from typing import Any


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profiler = cProfile.Profile()
        profiles.append(profiler)
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    sys.argv = ["etl", *args]
    from etl.cli import main as etl_main

    code: Any = 0
    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        etl_main()
    except SystemExit as exc:
        code = exc.code
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profiler in profiles:
            try:
                stats.add(profiler)
            except TypeError:  # a thread that never ran any Python
                continue
        stats.dump_stats(out)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
