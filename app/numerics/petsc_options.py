"""``solver.petsc_options`` checked before any work, by PETSc itself.

The options of a configuration are given to a copy of its time stepper on a system of
two unknowns (same prefix handling, same defaults, same TS, SNES, KSP and PC), which
takes one step on this rank alone. PETSc then says which values it refuses (an unknown
KSP type, a number that is not one) and which options it never looked at (a misspelt
name, an option of another KSP type): either is a :class:`ConfigError` naming the key.
Nothing is communicated, so every rank finds the same answer; what the copy prints
(``ts_monitor``, ``ts_view``) goes to /dev/null.
"""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from functools import cache

from petsc4py import PETSc

from app.config import Config, ConfigError
from app.numerics.master import AMG_OPTIONS
from app.numerics.stepper import default_options

#: the prefix of the copy's options (never one a real stepper uses)
PREFIX = "overhauser_check_"


@cache
def _petsc() -> ctypes.CDLL:
    """libpetsc, through petsc4py's own extension module (which links it)."""
    lib = ctypes.CDLL(PETSc.__file__)
    lib.PetscOptionsUsed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    lib.PetscErrorMessage.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p)]
    return lib


def _used(name: str) -> bool:
    """PetscOptionsUsed: has PETSc looked this option (no leading '-') up?"""
    used = ctypes.c_int(0)
    if _petsc().PetscOptionsUsed(None, name.encode(), ctypes.byref(used)) != 0:
        return False
    return bool(used.value)


def _message(code: int) -> str:
    """PETSc's own text of the error just raised, the copy's prefix removed, on one line."""
    text, specific = ctypes.c_char_p(), ctypes.c_char_p()
    _petsc().PetscErrorMessage(code, ctypes.byref(text), ctypes.byref(specific))
    raw = (specific.value or text.value or b"").decode(errors="replace")
    return " ".join(raw.replace("-" + PREFIX, "-").split()) or f"PETSc error {code}"


@contextmanager
def _silenced():
    """stdout and stderr to /dev/null (PETSc's error traces too), at both levels: C (file
    descriptors 1 and 2) and Python's sys.stdout and sys.stderr, through which petsc4py
    may print PETSc's output."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        with open(os.devnull, "w") as sink, redirect_stdout(sink), redirect_stderr(sink):
            yield
    finally:
        libc.fflush(None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _one_step(options: dict) -> tuple[str | None, set[str]]:
    """(PETSc's error or None, the options it never used) for one step of the copy."""
    db = PETSc.Options()
    for key, value in options.items():
        db[PREFIX + key] = value
    objects = []
    error = None
    try:
        with _silenced():
            A = PETSc.Mat().createAIJ([2, 2], nnz=1, comm=PETSc.COMM_SELF)
            J = PETSc.Mat().createAIJ([2, 2], nnz=1, comm=PETSc.COMM_SELF)
            for m in (A, J):
                _diagonal(m, 1.0)
            u, F = A.createVecs()
            u.set(1.0)
            objects += [A, J, u, F]

            def ifunction(ts, t, x, xdot, f):
                A.mult(xdot, f)
                A.multAdd(x, f, f)

            def ijacobian(ts, t, x, xdot, shift, jac, pc):
                _diagonal(jac, 1.0 + shift)
                return True

            ts = PETSc.TS().create(PETSc.COMM_SELF)
            objects.append(ts)
            ts.setOptionsPrefix(PREFIX)
            ts.setProblemType(PETSc.TS.ProblemType.LINEAR)
            ts.setIFunction(ifunction, F)
            ts.setIJacobian(ijacobian, J, J)
            ts.setTime(0.0)
            ts.setTimeStep(1e-3)
            ts.setMaxTime(1e-3)
            ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)
            try:
                ts.setFromOptions()
                ts.solve(u)
            except PETSc.Error as exc:
                error = _message(exc.ierr)
    finally:
        unused = {key for key in options if not _used(PREFIX + key)}
        for key in options:
            db.delValue(PREFIX + key)
        for obj in objects:
            obj.destroy()
    return error, unused


def _diagonal(mat: PETSc.Mat, value: float) -> None:
    for i in range(mat.getSize()[0]):
        mat.setValue(i, i, value)
    mat.assemble()


def options_of(cfg: Config, form: str | None = None) -> tuple[dict, dict]:
    """(the stepper's options before the user's, the user's) for ``cfg``'s solve, or for
    its solve with another ``form`` (a figure's compare_form)."""
    form = form or cfg.diffusion.form
    if form == "master":
        return {**default_options(cfg.solver, True), **AMG_OPTIONS}, dict(cfg.solver.petsc_options)
    symmetric = form != "paper"  # as app.numerics.fem chooses: CG, or GMRES for D lap u
    return default_options(cfg.solver, symmetric), dict(cfg.solver.petsc_options)


def check(cfg: Config, form: str | None = None) -> None:
    """ConfigError (one line) if PETSc refuses or never uses one of ``solver.petsc_options``."""
    base, user = options_of(cfg, form)
    if user:
        _check(tuple(base.items()), tuple(user.items()))


@cache
def _check(base: tuple, user: tuple) -> None:
    error, unused = _one_step({**dict(base), **dict(user)})
    if error is not None:  # the first of the user's options that makes PETSc fail
        for n in range(1, len(user) + 1):
            if n == len(user) or _one_step({**dict(base), **dict(user[:n])})[0] is not None:
                key, value = user[n - 1]
                raise ConfigError(f"solver.petsc_options.{key}: expected a value PETSc accepts ({error}), got {value!r}")
    for key, value in user:
        if key in unused:
            merged = {**dict(base), **dict(user)}
            solver = ", ".join(f"{k.split('_')[0].upper()} {merged[k]}" for k in ("ts_type", "ksp_type", "pc_type"))
            raise ConfigError(
                f"solver.petsc_options.{key}: expected an option PETSc uses in this solve ({solver}), got {value!r}"
            )
