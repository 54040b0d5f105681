#!/usr/bin/python3
"""course: what a teacher needs beside the grader (docs/course.md).

    ./lab course gradescope LAB DIR [--packages 'PKG ...']   Gradescope's autograder for LAB, in DIR
    ./lab course github-classroom LAB DIR                    the workflow a student repository needs
    ./lab course student-copy DIR                            the repository without answers and keys

gradescope writes setup.sh (installs Debian's python3 and python3-pytest, and
--packages: what the students' languages need), run_autograder (grades
/autograder/submission, whose `command` file says how to start the server,
into /autograder/results/results.json), the grader itself under serverlab/,
and autograder.zip holding them all, to upload. github-classroom writes
.github/workflows/classroom.yml (a step per contract: its command, its
points) and the grader under .serverlab/, for the assignment's template
repository. student-copy copies the repository without the answers
(docs/labs/answers/), the answer keys (docs/labs/solutions/), the cheats
(tests/labs/cheats/) and the tests that run them; links to them become text.
"""
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "labs"))
from labs import NAMES, NEEDS_BACKEND, POINTS  # noqa: E402

# What ./lab grade needs, and nothing else: copied into the bundles.
GRADER_FILES = ["lab", "tests/labs/grade.py", "tests/labs/labs.py", "tests/labs/contain.py", "tests/labs/student.py",
                "tests/labs/observe.py", "tests/labs/conftest.py", "tests/labs/test_contracts.py",
                "tests/labs/client.py", "tests/labs/backend.py", "tests/blackbox/harness.py", "tools/proc/proc.py"]

# Not in a student's copy: answers, answer keys, cheats (near-answers), and the tests that run them.
NOT_FOR_STUDENTS = ["docs/labs/answers", "docs/zh/labs/answers", "docs/labs/solutions", "tests/labs/cheats",
                    "tests/blackbox/test_grader.py", "tests/blackbox/test_grader_containment.py",
                    "tests/blackbox/test_course.py", "tests/blackbox/test_measure_your_server.py"]

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image
# (Ubuntu): the grader needs python3 and pytest, the servers what their
# languages need. Written by `./lab course gradescope {lab}` (serverlab).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3 python3-pytest{packages}
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission, as root: it grades the server in
# /autograder/submission against lab {lab}, contained (docs/course.md), and
# writes /autograder/results/results.json. The submission's `command` file is
# one line, the command that starts the server, {{port}} where the port goes.
# Written by `./lab course gradescope {lab}` (serverlab).
set -uo pipefail
root=${{AUTOGRADER_ROOT:-/autograder}}  # another root only for the toolkit's own test
results=$root/results/results.json
mkdir -p "$root/results"
fail() {{  # a results.json with no points and why
    python3 -c 'import json, sys; print(json.dumps({{"score": 0, "output": sys.argv[1]}}))' "$1" > "$results"
    exit 0
}}
[ -f "$root/submission/command" ] || fail "The submission has no file named command: one line, the command that \\
starts your server from its directory, with {{port}} where the port goes, e.g. {example}"
read -ra command < "$root/submission/command"
cd "$root/submission" || fail "no $root/submission"
"$root/source/serverlab/lab" grade {lab} --format gradescope -- "${{command[@]}}" > "$results.new" 2> "$results.err"
if [ -s "$results.new" ]; then mv "$results.new" "$results"; else fail "$(cat "$results.err")"; fi
"""

WORKFLOW_HEAD = """\
# GitHub Classroom's autograding for lab {lab} of serverlab, written by
# `./lab course github-classroom {lab}`. A step per contract: GitHub Classroom's
# command grader runs `./lab grade {lab} --only CONTRACT` with the command in the
# repository's `command` file, and gives the contract's points when it exits 0;
# the reporter adds them up for GitHub Classroom.
name: Autograding Tests
'on':
- push
- repository_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
    - name: Checkout code
      uses: actions/checkout@v4
"""

STEP = """\
    - name: {name}
      id: {name}
      uses: classroom-resources/autograding-command-grader@v1
      with:
        test-name: {name}
        setup-command: '{setup}'
        command: .serverlab/lab grade {lab} --only {name} -- $(cat command)
        timeout: 5
        max-score: {points}
"""


def example_command(lab):
    """A `command` file's line: lab proxy's names the grader's backend too."""
    return "python3 server.py --port {port}" + (" --backend {backend}" if lab in NEEDS_BACKEND else "")


def copy_files(names, target):
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest)


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def gradescope(lab, target, packages):
    target.mkdir(parents=True, exist_ok=True)
    executable(target / "setup.sh", SETUP.format(lab=lab, packages="".join(f" {p}" for p in packages)))
    executable(target / "run_autograder", RUN_AUTOGRADER.format(lab=lab, example=example_command(lab)))
    copy_files(GRADER_FILES, target / "serverlab")
    with zipfile.ZipFile(target / "autograder.zip", "w", zipfile.ZIP_DEFLATED) as z:  # the files at its root
        for path in sorted(target.rglob("*")):
            if path.is_file() and path.name != "autograder.zip":
                info = zipfile.ZipInfo.from_file(path, path.relative_to(target))
                z.writestr(info, path.read_bytes())
    print(f"course: {target}/autograder.zip is Gradescope's autograder for lab {lab}: setup.sh, run_autograder "
          f"and the grader (serverlab/). Students hand in their server and a file named command.")


def github_classroom(lab, target):
    workflow = target / ".github" / "workflows" / "classroom.yml"
    workflow.parent.mkdir(parents=True, exist_ok=True)
    graded = [(name, points) for name, (points, _) in POINTS[lab].items() if points]
    text = WORKFLOW_HEAD.format(lab=lab)
    for i, (name, points) in enumerate(graded):
        setup = "sudo apt-get update -q && sudo apt-get install -y -q python3-pytest" if i == 0 else ""
        text += STEP.format(name=name, lab=lab, points=points, setup=setup)
    text += ("    - name: Autograding Reporter\n      uses: classroom-resources/autograding-grading-reporter@v1\n"
             "      env:\n")
    text += "".join(f'        {name.upper()}_RESULTS: "${{{{steps.{name}.outputs.result}}}}"\n' for name, _ in graded)
    text += f"      with:\n        runners: {','.join(name for name, _ in graded)}\n"
    workflow.write_text(text)
    copy_files(GRADER_FILES, target / ".serverlab")
    if not (target / "command").exists():
        (target / "command").write_text(example_command(lab) + "\n")
    print(f"course: {workflow} grades lab {lab} ({sum(p for _, p in graded)} points) with the grader in "
          f"{target}/.serverlab; the students' `command` file says how to start their server.")


def tracked_files():
    """The repository's files: git's list (tracked, and new ones not ignored) where there is one, else
    every file but build output."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True, timeout=60)
        return [name for name in out.stdout.decode().split("\0") if name and (ROOT / name).is_file()]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", "build", "build-asan", "build-tsan", "build-fuzz", "results", "__pycache__"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def student_copy(target):
    if target.exists() and any(target.iterdir()):
        sys.exit(f"course: {target} is not empty")
    hidden = [ROOT / p for p in NOT_FOR_STUDENTS]

    def for_students(path):
        return not any(path == h or h in path.parents for h in hidden)

    kept = [name for name in tracked_files() if for_students(ROOT / name)]
    copy_files(kept, target)

    def text_for_hidden(name):  # a link from page `name` to a path students do not get: its text alone
        def replace(m):
            where = ((ROOT / name).parent / m.group(3).split("#")[0]).resolve()
            return m.group(2) if not m.group(1) and not for_students(where) else m.group(0)
        return replace

    for name in kept:
        if name.endswith(".md"):
            page = target / name
            page.write_text(LINK.sub(text_for_hidden(name), page.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"course: {target} holds the repository without {', '.join(NOT_FOR_STUDENTS)} ({len(kept)} files)")


def main(argv):
    usage = __doc__.strip().split("\n\n")[1]
    if len(argv) >= 3 and argv[0] in ("gradescope", "github-classroom") and argv[1] in NAMES:
        packages = []
        if argv[3:5] and argv[3] == "--packages":
            packages = argv[4].split()
        elif argv[3:]:
            sys.exit(f"course: unknown option {argv[3]!r}\n{usage}")
        target = pathlib.Path(argv[2])
        gradescope(argv[1], target, packages) if argv[0] == "gradescope" else github_classroom(argv[1], target)
        return 0
    if len(argv) == 2 and argv[0] == "student-copy":
        student_copy(pathlib.Path(argv[1]))
        return 0
    print(f"{usage}\nlabs: {', '.join(NAMES)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
