#!/usr/bin/python3
"""grade: checks a server, in any language, against one lab's contracts.

    ./lab grade --list
    ./lab grade LAB -- CMD ARGS...     ({port} in ARGS becomes a free port)

Starts the command for each contract, waits until the port accepts
connections, runs the contract, stops every process the command started
(even one that ignores SIGTERM or leaves its session), and prints, for each
property that failed, what was measured and where to look. Exit status: 0
when every contract passed, 1 when one failed, 2 for a usage error.
"""
import contextlib
import io
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from labs import LABS, NAMES  # noqa: E402


class Report:
    """A pytest plugin: collects each contract's outcome, then speaks to the student."""

    def __init__(self, lab):
        self.lab = lab
        self.results = []  # (name, outcome, message)
        self.out = sys.stdout  # pytest's own output is silenced; the report goes here

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome in ("failed", "skipped") and report.when == "setup":
            name = report.nodeid.split("::")[-1]
            message = ""
            if report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash else str(report.longrepr)
                message = message.removeprefix("AssertionError: ").removeprefix("Failed: ")
                message = message.split("\nassert ")[0]
            elif report.skipped:
                message = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                message = message.removeprefix("Skipped: ")
            self.results.append((name, report.outcome, message))

    def say(self, text):
        print(text, file=self.out)

    def pytest_sessionfinish(self, session):
        import test_contracts
        docs = {n: (getattr(test_contracts, n).__doc__ or n).strip().splitlines()[0]
                for n, *_ in self.results if hasattr(test_contracts, n)}
        failed = [r for r in self.results if r[1] == "failed"]
        passed = [r for r in self.results if r[1] == "passed"]
        self.say(f"\ngrade {self.lab}: {len(self.results)} contracts, {len(passed)} passed, {len(failed)} failed\n")
        for name, outcome, message in self.results:
            word = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[outcome]
            self.say(f"  {word}  {docs.get(name, name)}")
            if outcome == "failed":
                self.say(f"        measured: {message}")
                self.say(f"        look at:  {test_contracts.HINTS.get(name, '')}")
            elif outcome == "skipped" and message:
                self.say(f"        ({message})")
        page = dict((n, p) for n, _, p in LABS)[self.lab]
        self.say(f"\nThe lab: {page}" + ("" if failed else "  -- all contracts hold."))


def usage(code):
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    print("labs: " + ", ".join(NAMES), file=sys.stderr)
    sys.exit(code)


def main(argv):
    if argv[:1] == ["--list"]:
        for name, goal, page in LABS:
            print(f"{name:<12} {goal}  ({page})")
        return 0
    if len(argv) < 3 or argv[1] != "--" or argv[0] not in NAMES:
        if argv and argv[0] not in NAMES and argv[0] not in ("-h", "--help"):
            print(f"grade: unknown lab {argv[0]!r}", file=sys.stderr)
        usage(0 if argv[:1] in (["-h"], ["--help"]) else 2)
    lab, command = argv[0], argv[2:]
    if not any("{port}" in a for a in command):
        print("grade: the command needs a {port} argument for the port the grader picks, e.g. "
              "--port {port}", file=sys.stderr)
        return 2
    import pytest
    report = Report(lab)
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main([str(HERE / "test_contracts.py"), "-m", lab, "--server", json.dumps(command),
                            "-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning"],
                           plugins=[report])
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
