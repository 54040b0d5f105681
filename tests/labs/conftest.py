"""pytest wiring of the grader: --server is the command under test, one server per contract."""
import json
import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from labs import NAMES  # noqa: E402
from student import StudentServer, become_subreaper  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--server", help="the command under test as a JSON list; {port} is replaced")
    parser.addoption("--server-cwd", help="the directory the command runs in (default: the current one)")


def pytest_configure(config):
    for name in NAMES:
        config.addinivalue_line("markers", f"{name}: a contract of the {name} lab")
    config.addinivalue_line("markers", "optional: a contract only the toolkit's own servers must meet")
    become_subreaper()


@pytest.fixture
def server(request):
    argv = request.config.getoption("--server")
    if not argv:
        pytest.exit("give the server to grade: --server '[\"cmd\", \"--port\", \"{port}\"]'", returncode=2)
    try:
        s = StudentServer(json.loads(argv), cwd=request.config.getoption("--server-cwd"))
    except RuntimeError as e:
        error = str(e)  # failed outside the except block, so the report is not chained to it
    else:
        error = None
    if error:
        pytest.fail(error, pytrace=False)
    yield s
    s.kill()
