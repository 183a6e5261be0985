"""A failure on any rank ends the whole MPI job, with one line, never a hang.

An exception that escapes on one rank would leave the others waiting in a collective
forever (and the failing rank itself in PETSc's collective clean-up at exit). So the
entry point runs ``main`` through :func:`run_or_abort`: any exception prints one line,
``error: rank R of N: <Type>: <message>``, on stderr and calls ``MPI_Abort``, which ends
every rank of the job (Open MPI adds its own notice of the abort). Bad input never gets
here: it is found on every rank alike, before any work, and exits with code 2.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable

#: exit code of a job ended by a failure (bad input is 2)
FAILED = 1
#: seconds between the error line and MPI_Abort, for the line to be forwarded
ABORT_GRACE_S = 0.5
#: exit code of a job ended by SIGINT (Ctrl-C), as a shell reports it
INTERRUPTED = 130

#: the signal that interrupted this process, if one did (whatever exception it became: a
#: KeyboardInterrupt inside a PETSc callback surfaces as the time stepper's failure)
_interrupted: list[int] = []


def _on_sigint(signum, frame):
    _interrupted.append(signum)
    raise KeyboardInterrupt


def root_cause(exc: BaseException) -> BaseException:
    """The exception that started it: an exception raised while another was being handled
    (a writer's clean-up after its write failed: ADIOS2's "An existing exchange is still
    active" after "No space left on device") hides the first in ``__context__``. An
    explicit ``raise ... from`` is the author's choice of words and is kept."""
    while exc.__cause__ is None and exc.__context__ is not None and not exc.__suppress_context__:
        exc = exc.__context__
    return exc


def one_line(exc: BaseException) -> str:
    """``Type: message`` of ``exc``'s :func:`root_cause` on one line."""
    exc = root_cause(exc)
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # colour codes (ADIOS2's messages have them)
    text = re.sub(r"\[\w{3} \w{3} +\d+ [\d:]{8} \d{4}\] ?", "", text)  # ADIOS2's time stamp
    text = " ".join(text.split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"


def run_or_abort(main: Callable[[], int], comm=None) -> int:
    """``main()``'s exit code; on an exception, one line and MPI_Abort of the whole job (an
    interrupt is said as such: ``error: rank R: interrupted (SIGINT)``, exit code 130)."""
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        return main()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001  (KeyboardInterrupt included: end them all)
        from mpi4py import MPI

        comm = comm or MPI.COMM_WORLD
        where = f"rank {comm.rank} of {comm.size}" if comm.size > 1 else "rank 0"
        interrupted = bool(_interrupted) or isinstance(exc, KeyboardInterrupt)
        what = "interrupted (SIGINT)" if interrupted else one_line(exc)
        sys.stderr.write(f"error: {where}: {what}\n")
        if os.environ.get("OVERHAUSER_TRACEBACK"):  # the full traceback, for debugging
            traceback.print_exc()
        sys.stderr.flush()
        sys.stdout.flush()
        # the line is in the pipe to Open MPI's I/O forwarding; an abort at once can end the
        # forwarder before it reads it (seen 1 in 8 runs): give it a moment
        time.sleep(ABORT_GRACE_S)
        code = INTERRUPTED if interrupted else FAILED
        comm.Abort(code)
        return code  # not reached
