import os
import pathlib

import pytest

from harness import Server

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_addoption(parser):
    parser.addoption("--bin-dir", default=str(ROOT / "build" / "bin"),
                     help="where the built models are (default: build/bin)")


@pytest.fixture(scope="session")
def bin_dir(request):
    path = pathlib.Path(request.config.getoption("--bin-dir"))
    if not path.is_dir():
        pytest.exit(f"{path} does not exist: build first (./lab build)", returncode=2)
    return path


@pytest.fixture
def start(bin_dir):
    """start(model, *args) -> Server on a free loopback port; every one is killed at teardown."""
    servers = []

    def _start(model, *args):
        exe = bin_dir / model
        assert exe.exists(), f"{exe} is not built"
        server = Server([exe, "--port", "0", *args])
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.kill()
    # Under a sanitizer build (./lab tsan), a report on any server's stderr fails the test.
    if os.environ.get("SERVERLAB_SANITIZER"):
        reports = [s.stderr() for s in servers if "Sanitizer" in s.stderr()]
        if reports:
            pytest.fail("sanitizer report:\n" + reports[0][-4000:], pytrace=False)
