#!/usr/bin/python3
"""grade: checks a server, in any language, against one lab's contracts.

    ./lab grade --list
    ./lab grade LAB [--json | --format text|json|gradescope] [--only NAME,...] -- CMD ARGS...
                                                           ({port} in ARGS becomes a free port;
                                                            lab proxy's {backend}, the grader's backend)

Starts the command for each contract, in the directory --cwd names (./lab
passes the one it was run from; by default, the current one), waits until
the port accepts connections, runs the contract, stops every process the
command started (even one that ignores SIGTERM or leaves its session), and
prints, for each property that failed, what was measured and where to look,
with the points of each contract (labs.py) and the score. --json (--format
json) prints one JSON object instead (see report_json); --format gradescope
prints Gradescope's results.json (report_gradescope). --only runs the named
contracts alone (the names --json shows). As root, the command runs
contained (contain.py). Exit status: 0 when every contract passed, 1 when
one failed, 2 for a usage error.
"""
import contextlib
import io
import json
import os
import pathlib
import signal
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "tools" / "proc")]
from labs import LABS, NAMES, NEEDS_BACKEND, POINTS  # noqa: E402

FORMATS = ("text", "json", "gradescope")


def contract_name(nodeid):
    """test_contracts.py::test_no_zombies -> no_zombies: the name --json shows and --only takes."""
    return nodeid.split("::")[-1].removeprefix("test_")


# Where to look when the server did not even start (the fixture failed, not the contract).
START_HINT = ("the command must start a server that accepts connections on 127.0.0.1 at the {port} it is "
              "given, within 10 s; it runs in (a copy of) the directory ./lab grade was run from")


class Report:
    """A pytest plugin: hands the containment to the contracts and collects each contract's outcome."""

    def __init__(self, lab, containment):
        self.lab, self.containment = lab, containment
        self.results = []  # (name, outcome, message)
        self.not_started = set()  # names whose server did not start

    def pytest_configure(self, config):
        config.containment = self.containment

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome in ("failed", "skipped") and report.when == "setup":
            message = ""
            if report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash else str(report.longrepr)
                message = message.removeprefix("AssertionError: ").removeprefix("Failed: ")
                message = message.removeprefix("conftest.ContractTimeLimit: ")
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
        """[dict(name, description, outcome, measured, hint, points, max_points)] in the order they ran.
        A contract earns its points when it passed; an optional one (0 points) earns none either way."""
        import test_contracts
        out = []
        for name, outcome, message in self.results:
            fn = getattr(test_contracts, f"test_{name}", None)
            description = (fn.__doc__ or name).strip().splitlines()[0] if fn else name
            hint = START_HINT if name in self.not_started else test_contracts.HINTS.get(f"test_{name}")
            worth = POINTS[self.lab].get(name, (0, False))[0]
            out.append(dict(name=name, description=description, outcome=outcome, measured=message or None,
                            hint=hint, points=worth if outcome == "passed" else 0, max_points=worth))
        return out

    def score(self):
        contracts = self.contracts()
        return sum(c["points"] for c in contracts), sum(c["max_points"] for c in contracts)


def report_text(lab, command, report, passed, out):
    counts = f"{report.count('passed')} passed, {report.count('failed')} failed"
    if report.count("skipped"):
        counts += f", {report.count('skipped')} skipped"
    score, most = report.score()
    print(f"\ngrade {lab}: {len(report.results)} contract{'s' * (len(report.results) != 1)}, {counts}: "
          f"{score} of {most} points\n", file=out)
    for c in report.contracts():
        word = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[c["outcome"]]
        worth = f"{c['points']:>2}/{c['max_points']:<2}" if c["max_points"] else "  -  "
        print(f"  {word} {worth} {c['description']}", file=out)
        if c["outcome"] == "failed":
            print(f"        measured: {c['measured']}", file=out)
            print(f"        look at:  {c['hint'] or ''}", file=out)
        elif c["outcome"] == "skipped" and c["measured"]:
            print(f"        ({c['measured']})", file=out)
    page = dict((n, p) for n, _, p in LABS)[lab]
    print(f"\nThe lab: {page}" + ("  -- all contracts hold." if passed else ""), file=out)
    print("The server " + "; ".join(report.containment.notes) + ".", file=out)


def report_json(lab, command, report, passed, out):
    """One JSON object: {"lab", "command", "passed", "score", "max_score", "contracts": [{"name",
    "description", "outcome": "passed"|"failed"|"skipped", "measured", "hint", "points", "max_points"}],
    "counts": {"passed", "failed", "skipped"}, "contained": [...]}. `measured` is what a failed contract
    measured, or why one was skipped; null for a pass. `score` sums the points earned, `max_score` the
    points of the contracts that ran (labs.py); `contained` says how the command ran (contain.py)."""
    counts = {outcome: report.count(outcome) for outcome in ("passed", "failed", "skipped")}
    score, most = report.score()
    print(json.dumps(dict(lab=lab, command=command, passed=passed, score=score, max_score=most,
                          contracts=report.contracts(), counts=counts, contained=report.containment.notes)), file=out)


def report_gradescope(lab, command, report, passed, out):
    """Gradescope's results.json (gradescope-autograders.readthedocs.io, "Autograder Specifications"):
    the score, and a test per contract with its name, score, max_score, status and output."""
    score, most = report.score()
    tests = []
    for c in report.contracts():
        text = c["description"]
        if c["outcome"] == "failed":
            text += f"\nmeasured: {c['measured']}\nlook at: {c['hint'] or ''}"
        elif c["outcome"] == "skipped":
            text += f"\nskipped: {c['measured'] or ''}"
        tests.append(dict(name=c["name"], score=c["points"], max_score=c["max_points"],
                          status="failed" if c["outcome"] == "failed" else "passed", output=text))
    head = (f"./lab grade {lab}: {score} of {most} points. The command: {' '.join(command)}\n"
            f"The server {'; '.join(report.containment.notes)}.")
    print(json.dumps(dict(score=score, output=head, tests=tests), indent=1), file=out)


REPORTS = {"text": report_text, "json": report_json, "gradescope": report_gradescope}


def usage(code, error=None):
    if error:
        print(f"grade: {error}", file=sys.stderr)
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    print("labs: " + ", ".join(NAMES), file=sys.stderr)
    return code


def parse(argv):
    """(lab, format, only, cwd, command), or an exit status for --help, --list and usage errors."""
    before, command = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    lab, form, only, cwd = None, "text", [], os.getcwd()
    words = iter(before)
    for word in words:
        if word in ("-h", "--help"):
            return usage(0)
        elif word == "--list":
            for name, goal, page in LABS:
                print(f"{name:<12} {goal}  ({page})")
            return 0
        elif word == "--json":
            form = "json"
        elif word in ("--only", "--cwd", "--format"):
            value = next(words, None)
            if value is None:
                return usage(2, f"{word} needs a value")
            if word == "--cwd":
                cwd = value  # ./lab passes the directory it was run from: it changes to the repo's before us
            elif word == "--format":
                if value not in FORMATS:
                    return usage(2, f"--format takes {', '.join(FORMATS)}, not {value!r}")
                form = value
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
    if lab in NEEDS_BACKEND and not any("{backend}" in a for a in command):
        print(f"grade: lab {lab} relays to a backend the grader starts: the command needs a {{backend}} argument, "
              "which becomes its HOST:PORT, e.g. --backend {backend}", file=sys.stderr)
        return 2
    if not os.path.isdir(cwd):
        return usage(2, f"--cwd {cwd!r} is not a directory")
    unknown = [n for n in only if n not in POINTS[lab]]
    if unknown:
        return usage(2, f"lab {lab} has no contract named {', '.join(unknown)} "
                        f"(its contracts: {', '.join(POINTS[lab])})")
    return lab, form, only, cwd, command


def main(argv):
    parsed = parse(argv)
    if isinstance(parsed, int):
        return parsed
    lab, form, only, cwd, command = parsed
    from contain import Containment
    from student import kill_everything
    import pytest
    # A stop from outside (the class loop's `timeout`, Ctrl-C) ends the run through pytest, whose
    # fixtures stop their server; the finally below kills what is left.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    containment = Containment(cwd)
    report = Report(lab, containment)
    args = [str(HERE / "test_contracts.py"), "-m", lab, "--lab", lab, "--server", json.dumps(command),
            "--server-cwd", cwd, "-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning"]
    if only:
        args += ["-k", " or ".join(f"test_{n}" for n in only)]
    out = sys.stdout  # pytest's own output is silenced; the report goes here
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = pytest.main(args, plugins=[report])
    finally:
        kill_everything(containment)
    passed = code == 0 and report.count("failed") == 0
    REPORTS[form](lab, command, report, passed, out)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
