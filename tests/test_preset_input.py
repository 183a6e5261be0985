"""Bad preset files and figure options: one line naming the preset and the key, exit code
2, nothing written; found before the first solve, never a traceback after the last."""

from __future__ import annotations

import pytest

from app import run as app_run

pytestmark = pytest.mark.serial

HEAD = '[figure]\nkind = "decay"\ntitle = "t"\n'
CURVE = '[[curve]]\nlabel = "a"\n'

BAD = [
    ("curve = 5\n" + HEAD, "preset p: curve: expected an array of tables ([[curve]]), got 5"),
    ("curve = [3]\n" + HEAD, "preset p: curve 1: expected a table ([[curve]]), got 3"),
    ("config = 5\n" + HEAD + CURVE, "preset p: config: expected a table ([config]), got 5"),
    ("figure = 3\n" + CURVE, "preset p: figure: expected a valid dictionary or instance of FigureSpec, got 3"),
    (HEAD + CURVE + CURVE, "preset p: curve 2: expected a label no other curve has, got 'a'"),
    (HEAD + 'fit = "a"\nfit_window = [0.95, 0.05]\n' + CURVE,
     "preset p: figure.fit_window: expected [low, high] with 0 <= low < high <= 1 (h/h0), got [0.95, 0.05]"),
    (HEAD + "window = [3000.0, 0.1]\n" + CURVE,
     "preset p: figure.window: expected [low, high] with 0 <= low < high (s), got [3000.0, 0.1]"),
    (HEAD + 'compare_form = "eq25"\n' + CURVE,
     "preset p: figure.compare_form: expected 'paper', 'conservative' or 'tensor', got 'eq25'"),
    (HEAD + CURVE + "model = 3\n", "p [a]: model: expected a valid dictionary or instance of Model, got 3"),
]  # fmt: skip


@pytest.mark.parametrize("text,message", BAD, ids=[m.split(": ", 2)[1] for _, m in BAD])
def test_a_bad_preset_file_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, message):
    preset = tmp_path / "p.toml"
    preset.write_text(text)
    out = tmp_path / "o"
    assert app_run.main(["--preset", str(preset), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not out.exists()


def test_every_set_is_validated_even_where_each_curve_replaces_it(tmp_path, capsys):
    """Every curve of fig3 sets model.B0: the bad value would otherwise never be looked at."""
    out = tmp_path / "o"
    assert app_run.main(["--preset", "fig3", "--set", "model.B0=abc", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: fig3 [B0 = 20 mT, (1,1)]: model.B0: expected a number, got 'abc'\n"
    assert not out.exists()


@pytest.mark.parametrize("order", [["fig3", "nosuch"], ["nosuch", "fig3"]], ids=["second", "first"])
def test_repeated_preset_options_add_up(tmp_path, capsys, order):
    """--preset a --preset b makes both: the bad one is found wherever it stands."""
    out = tmp_path / "o"
    assert app_run.main(["--preset", order[0], "--preset", order[1], "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: --preset: expected one of "
        "fig1, fig2, fig3, fig4, fig5, forms, tau_vs_B0, tau_vs_r0, sensitivity, beyond_2d, gaas, gaas_headline, gaas_rc, "
        "prediction_3d, spreading_3d, tau_vs_B0_gaas, tau_vs_pump, validation_2d, validation_3d, all, or a .toml file, "
        "got 'nosuch'\n"
    )
    assert app_run.parser().parse_args(["--preset", "fig3", "fig5", "--preset", "fig4"]).preset == ["fig3", "fig5", "fig4"]


@pytest.mark.parametrize("name", ["fig1", "fig2"])
def test_the_field_figures_refuse_the_real_crystal_in_one_line(tmp_path, capsys, name):
    """Figures 1 and 2 map the article's lattice rates: with GaAs they would be the article's lattice
    with GaAs's constants (app.physics.lattice refuses it with a ValueError deep in the figure)."""
    out = tmp_path / "o"
    assert app_run.main(["--preset", name, "--set", "model.crystal=GaAs", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name} [") and err.count("\n") == 1
    assert err.endswith("]: model.crystal: expected 'article' in a field figure (its maps are the article's lattice "
                        "rates; the real crystal's D is in the decay presets' run.json), got 'GaAs'\n")  # fmt: skip
    assert not out.exists()


def test_quick_fits_the_coarse_mesh_to_a_sweeps_radius():
    """--quick's h_max = 40 nm on a sweep of R = 60 nm (tau_vs_B0_gaas) was refused as
    'mesh.h_max: expected at most domain.radius / 2 = 30.0, got 40.0': a figure's curves were
    fitted to their radius, a sweep's cases were not."""
    from app.studies import catalogue

    sweep = catalogue.resolve(catalogue.load_preset("tau_vs_B0_gaas"), quick=True)
    assert {(c.mesh.h_max, c.mesh.h_min) for c in sweep.configs} == {(30.0, 6.0)}
    radii = catalogue.resolve(catalogue.load_preset("tau_vs_B0_gaas"), overrides=["domain.radius=300"], quick=True)
    assert {c.mesh.h_max for c in radii.configs} == {40.0}
