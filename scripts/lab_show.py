"""What the lab demos (scripts/lab_demo.py) share: headings, checks that are
counted, and keeping the lab up until Ctrl-C.

A check prints "ok" or "FAILED: ..." and is remembered, so that the demo ends
with exit 1 when anything it showed did not happen; a step that cannot go on
(a wait that timed out) raises, and the demo tears the lab down and exits 1.
"""

from __future__ import annotations

import time


class Show:
    """Prints the demo's steps; counts the checks that failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def step(self, text: str) -> None:
        print(f"\n=== {text}", flush=True)

    def output(self, command: str, text: str) -> None:
        """A command's output, under the command line that printed it."""
        print(f"$ {command}\n{text.rstrip()}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        print(f"{what}: {'ok' if ok else 'FAILED'}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok

    def keep(self, hints: list[str]) -> None:
        """Wait for Ctrl-C (``--keep``), after printing what to try."""
        self.step("the lab stays up; try for example:")
        for hint in hints:
            print(f"  {hint}")
        print("Ctrl-C tears it down.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    def result(self) -> int:
        """0, or 1 after naming the checks that failed."""
        if self.failed:
            print(f"\nlab: {len(self.failed)} check(s) FAILED: {'; '.join(self.failed)}", flush=True)
            return 1
        return 0
