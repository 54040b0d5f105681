"""Running a server short of descriptors, and when the sanitizer builds cannot."""
import os
import resource

import pytest


def limit_files(soft, hard=None):
    """A preexec_fn that gives the server `soft` descriptors (hard limit `hard`, or the same)."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft if hard is None else hard))


# Out of descriptors, UBSan's vptr check (which probes memory through a pipe())
# reports a false "invalid vptr" and, unrecoverable, kills the process.
no_sanitizer_at_the_fd_limit = pytest.mark.skipif(
    bool(os.environ.get("SERVERLAB_SANITIZER")),
    reason="UBSan's vptr check probes memory through a pipe(): with no descriptor left it reports a false "
           "'invalid vptr' and kills the process (docs/reliability.md)")
