"""solver.petsc_options are checked by PETSc before any work: a name PETSc does not use
in this solve, or a value it refuses, is one line naming the key, exit code 2, nothing
written; the options PETSc does use pass, whatever stage of the solve reads them."""

from __future__ import annotations

import pytest
from petsc4py import PETSc

from app import config as app_config
from app import run as app_run
from app.numerics import petsc_options

SOLVER = "(TS bdf, KSP cg, PC hypre)"

BAD = [
    ("ksp_tpye=cg", f"solver.petsc_options.ksp_tpye: expected an option PETSc uses in this solve {SOLVER}, got 'cg'"),
    ("ksp_type=nonsense",
     "solver.petsc_options.ksp_type: expected a value PETSc accepts (Unable to find requested KSP type nonsense), "
     "got 'nonsense'"),
    ("pc_type=nonsense",
     "solver.petsc_options.pc_type: expected a value PETSc accepts (Unable to find requested PC type nonsense), "
     "got 'nonsense'"),
    ("ksp_rtol=abc",
     "solver.petsc_options.ksp_rtol: expected a value PETSc accepts (Input string abc has no numeric value), got 'abc'"),
    ("pc_hypre_boomeramg_coarsen_type=nonsense",
     "solver.petsc_options.pc_hypre_boomeramg_coarsen_type: expected a value PETSc accepts (Unknown option {nonsense} "
     "for -pc_hypre_boomeramg_coarsen_type. Available options: cljp ruge-stueben modifiedruge-stueben falgout pmis "
     "hmis), got 'nonsense'"),
    # an option of another KSP type is not used by this solve's CG
    ("ksp_gmres_restart=50",
     f"solver.petsc_options.ksp_gmres_restart: expected an option PETSc uses in this solve {SOLVER}, got 50"),
    ("-ksp_type=cg", f"solver.petsc_options.-ksp_type: expected an option PETSc uses in this solve {SOLVER}, got 'cg'"),
    ("mat_view=''", f"solver.petsc_options.mat_view: expected an option PETSc uses in this solve {SOLVER}, got ''"),
]  # fmt: skip


@pytest.mark.serial
@pytest.mark.parametrize("option,message", BAD, ids=[o for o, _ in BAD])
def test_a_bad_option_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, option, message):
    out = tmp_path / "results"
    args = ["--single", "--set", f"solver.petsc_options.{option}", "--set", f"mesh.directory='{tmp_path / 'm'}'"]
    assert app_run.main([*args, "--out", str(out)]) == 2
    # PETSc's own text: 3.25 quotes the value it refuses, 3.22 does not
    quoted = PETSc.Sys.getVersion() >= (3, 25)
    assert capsys.readouterr().err == f"error: {message}\n".replace("{nonsense}", '"nonsense"' if quoted else "nonsense")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.serial
def test_figures_check_the_options_of_every_solve_before_any(tmp_path, capsys):
    """fig3's curves are solved with CG (tensor form) and again with GMRES (its paper form)."""
    out = tmp_path / "results"
    argv = ["--preset", "fig3", "--set", "solver.petsc_options.ksp_gmres_restart=50", "--out", str(out)]
    assert app_run.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: solver.petsc_options.ksp_gmres_restart: expected an option PETSc uses in this solve {SOLVER}, got 50\n"
    )
    assert not out.exists()


def check(*options: str, **sections) -> None:
    cfg = app_config.load(overrides=[f"solver.petsc_options.{o}" for o in options])
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, name), key, value)
    petsc_options.check(cfg)


@pytest.mark.parametrize(
    "options",
    [
        ["ksp_type=richardson", "ksp_max_it=1"],
        ["ts_max_steps=3"],
        ["ksp_type=gmres", "ksp_gmres_restart=50"],
        ["pc_type=gamg", "mg_levels_ksp_type=chebyshev"],  # read only when the multigrid levels are made
        ["ts_view=''"],  # read at the end of the time integration
        ["ts_monitor=''", "ksp_converged_reason=''"],
        ["pc_hypre_boomeramg_strong_threshold=0.5"],
        ["ts_adapt_type=none"],
    ],
    ids=lambda o: ",".join(o),
)
def test_options_petsc_uses_pass(options, capfd):
    check(*options)
    assert capfd.readouterr() == ("", "")  # the copy's monitors and views are not shown


def test_the_forms_and_the_lattice_solve_are_checked_with_their_own_solver():
    check("ksp_gmres_restart=50", diffusion={"form": "paper"})  # D lap u is not symmetric: GMRES
    with pytest.raises(app_config.ConfigError, match=r"in this solve \(TS rosw, KSP cg, PC hypre\), got 2$"):
        check("ts_bdf_order=2", solver={"ts_type": "rosw"})
    master = app_config.build(diffusion={"form": "master", "source": "lattice"},
                              solver={"petsc_options": {"pc_hypre_boomeramg_P_max": 4}})  # fmt: skip
    petsc_options.check(master)
    assert petsc_options.options_of(master)[0]["pc_hypre_boomeramg_coarsen_type"] == "HMIS"


def test_the_check_leaves_no_option_behind():
    from petsc4py import PETSc

    with pytest.raises(app_config.ConfigError):
        check("ksp_type=gmres", "ksp_rtol=abc")
    assert not [k for k in PETSc.Options().getAll() if k.startswith(petsc_options.PREFIX)]
