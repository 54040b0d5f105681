#!/usr/bin/python3
"""grade: checks a server, in any language, against one lab's contracts.

    ./lab grade --list
    ./lab grade LAB [--json] [--only NAME,...] -- CMD ARGS...     ({port} in ARGS becomes a free port)

Starts the command for each contract, in the directory --cwd names (./lab
passes the one it was run from; by default, the current one), waits until
the port accepts connections, runs the contract, stops every process the
command started (even one that ignores SIGTERM or leaves its session), and
prints, for each property that failed, what was measured and where to look.
--json prints one JSON object instead (see report_json); --only runs the
named contracts alone (the names --json shows). Exit status: 0 when every
contract passed, 1 when one failed, 2 for a usage error.
"""
import contextlib
import io
import json
import os
import sys
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from labs import LABS, NAMES  # noqa: E402


def contract_name(nodeid):
    """test_contracts.py::test_no_zombies -> no_zombies: the name --json shows and --only takes."""
    return nodeid.split("::")[-1].removeprefix("test_")


# Where to look when the server did not even start (the fixture failed, not the contract).
START_HINT = ("the command must start a server that accepts connections on 127.0.0.1 at the {port} it is "
              "given, within 10 s; it runs in the directory ./lab grade was run from")


class Report:
    """A pytest plugin: collects each contract's outcome."""

    def __init__(self):
        self.results = []  # (name, outcome, message)
        self.not_started = set()  # names whose server did not start

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome in ("failed", "skipped") and report.when == "setup":
            message = ""
            if report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash else str(report.longrepr)
                message = message.removeprefix("AssertionError: ").removeprefix("Failed: ")
                message = message.split("\nassert ")[0]
            elif report.skipped:
                message = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                message = message.removeprefix("Skipped: ")
            self.results.append((contract_name(report.nodeid), report.outcome, message))
            if report.failed and report.when == "setup":
                self.not_started.add(contract_name(report.nodeid))

    def count(self, outcome):
        return sum(1 for _, o, _ in self.results if o == outcome)

    def contracts(self):
        """[(name, description, outcome, measured, hint)] in the order they ran."""
        import test_contracts
        out = []
        for name, outcome, message in self.results:
            fn = getattr(test_contracts, f"test_{name}", None)
            description = (fn.__doc__ or name).strip().splitlines()[0] if fn else name
            hint = START_HINT if name in self.not_started else test_contracts.HINTS.get(f"test_{name}")
            out.append((name, description, outcome, message or None, hint))
        return out


def report_text(lab, report, passed, out):
    counts = f"{report.count('passed')} passed, {report.count('failed')} failed"
    if report.count("skipped"):
        counts += f", {report.count('skipped')} skipped"
    print(f"\ngrade {lab}: {len(report.results)} contract{'s' * (len(report.results) != 1)}, {counts}\n", file=out)
    for _, description, outcome, measured, hint in report.contracts():
        word = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[outcome]
        print(f"  {word}  {description}", file=out)
        if outcome == "failed":
            print(f"        measured: {measured}", file=out)
            print(f"        look at:  {hint or ''}", file=out)
        elif outcome == "skipped" and measured:
            print(f"        ({measured})", file=out)
    page = dict((n, p) for n, _, p in LABS)[lab]
    print(f"\nThe lab: {page}" + ("  -- all contracts hold." if passed else ""), file=out)


def report_json(lab, command, report, passed, out):
    """One JSON object: {"lab", "command", "passed", "contracts": [{"name", "description",
    "outcome": "passed"|"failed"|"skipped", "measured", "hint"}], "counts": {"passed", "failed", "skipped"}}.
    `measured` is what a failed contract measured, or why one was skipped; null for a pass."""
    contracts = [dict(name=n, description=d, outcome=o, measured=m, hint=h) for n, d, o, m, h in report.contracts()]
    counts = {outcome: report.count(outcome) for outcome in ("passed", "failed", "skipped")}
    print(json.dumps(dict(lab=lab, command=command, passed=passed, contracts=contracts, counts=counts)), file=out)


def usage(code, error=None):
    if error:
        print(f"grade: {error}", file=sys.stderr)
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    print("labs: " + ", ".join(NAMES), file=sys.stderr)
    return code


def main(argv):
    before, command = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    lab, as_json, only, cwd = None, False, [], os.getcwd()
    words = iter(before)
    for word in words:
        if word in ("-h", "--help"):
            return usage(0)
        elif word == "--list":
            for name, goal, page in LABS:
                print(f"{name:<12} {goal}  ({page})")
            return 0
        elif word == "--json":
            as_json = True
        elif word in ("--only", "--cwd"):
            value = next(words, None)
            if value is None:
                return usage(2, f"{word} needs a value")
            if word == "--cwd":
                cwd = value  # ./lab passes the directory it was run from: it changes to the repo's before us
            else:
                only += [n.strip().removeprefix("test_") for n in value.split(",") if n.strip()]
        elif word in NAMES and lab is None:
            lab = word
        else:
            return usage(2, f"unknown lab or option {word!r}")
    if lab is None or not command:
        return usage(2, "give a lab and, after --, the command that starts your server")
    if not any("{port}" in a for a in command):
        print("grade: the command needs a {port} argument for the port the grader picks, e.g. "
              "--port {port}", file=sys.stderr)
        return 2
    if not os.path.isdir(cwd):
        return usage(2, f"--cwd {cwd!r} is not a directory")
    import test_contracts
    unknown = [n for n in only if not hasattr(test_contracts, f"test_{n}")]
    if unknown:
        known = sorted(contract_name(n) for n in dir(test_contracts) if n.startswith("test_"))
        return usage(2, f"no contract named {', '.join(unknown)} (contracts: {', '.join(known)})")
    import pytest
    report = Report()
    args = [str(HERE / "test_contracts.py"), "-m", lab, "--server", json.dumps(command), "--server-cwd", cwd,
            "-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning"]
    if only:
        args += ["-k", " or ".join(f"test_{n}" for n in only)]
    out = sys.stdout  # pytest's own output is silenced; the report goes here
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(args, plugins=[report])
    passed = code == 0 and report.count("failed") == 0
    if as_json:
        report_json(lab, command, report, passed, out)
    else:
        report_text(lab, report, passed, out)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
