"""Write docs/configuration.md from the configuration schema (app/config.py).

    python3 scripts/config_doc.py            # (re)write docs/configuration.md
    python3 scripts/config_doc.py --check    # exit 1, with one line, if the page is stale

Everything on the page comes from the pydantic models: every field of every section of
``Config`` (never a hand list), its default, its unit (the end of its ``description`` after
the last comma, when that is a unit), its meaning (the rest of the description), the values
it allows (Literal choices, bounds, patterns) and the section docstrings. Defaults that
depend on the geometry are found by applying Config's before-validators (which fill the 3D
defaults) to a configuration of each ``domain.geometry``. Only pydantic is needed: no MPI,
PETSc or DOLFINx.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
COMMAND = "python3 scripts/config_doc.py"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import config as C  # noqa: E402

#: units as the descriptions write them (the text after a description's last comma)
UNITS = {"nm", "s", "T", "GB", "rad/s", "nm^2/s", "rad s^-1 T^-1", "1/s"}
#: prefixes of a unit-like last part: "in units of a0", "as a fraction of max u(x, y, 0)"
UNIT_PREFIXES = {"in units of ": "", "as a fraction of ": "fraction of "}

#: what an unset (None) default means, where the code elsewhere gives it a value; a None
#: key missing here is shown as "unset" with its description
UNSET = {
    "domain.barrier": lambda: f"`{C.DEFAULT_BARRIER:g}` nm for a slab (`DEFAULT_BARRIER`); must stay unset otherwise",
    "initial.profile": lambda: '`"uniform"` in layer and slab; must stay unset for the disk',
}


# --- formatting --------------------------------------------------------------------------


def toml_literal(value) -> str:
    """A default as a TOML literal (what a user would write in case.toml)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            for digits in range(1, 18):  # the shortest exact scientific form
                text = f"{value:.{digits - 1}e}"
                if float(text) == value:
                    break
            mantissa, exponent = text.split("e")
            return f"{mantissa}e{int(exponent)}"
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {value!r}")


def rst_to_md(text: str) -> str:
    """Docstring markup to Markdown: ``x`` and :class:`x` become `x`."""
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def unit_and_meaning(description: str | None) -> tuple[str, str]:
    """("nm", "lattice spacing") from "lattice spacing, nm"; ("", description) without a unit.

    A parenthesis after the unit stays with the meaning: "element size, nm (3 in 3D)"."""
    description = (description or "").strip()
    parts = split_top_level(description)
    if len(parts) < 2:
        return "", description
    last = parts[-1].strip()
    head, paren = last, ""
    m = re.match(r"^(.*?)\s+(\(.*\))$", last)
    if m and m.group(1):
        head, paren = m.group(1), m.group(2)
    unit = None
    if head in UNITS:
        unit = head
    else:
        for prefix, shown in UNIT_PREFIXES.items():
            if head.startswith(prefix):
                unit = shown + head[len(prefix) :]
                break
    if unit is None:
        return "", description
    meaning = ",".join(parts[:-1]).strip()
    return unit, f"{meaning} {paren}".strip()


def _type_name(tp) -> str:
    names = {float: "number", int: "integer", bool: "boolean", str: "string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def allowed(field) -> str:
    """The values a field accepts, from its annotation and metadata."""
    tp = field.annotation
    optional = False
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        text = ", ".join(f"`{toml_literal(v)}`" for v in typing.get_args(tp))
    elif origin is dict:
        key, value = typing.get_args(tp)
        values = typing.get_args(value) or (value,)
        names = [_type_name(v) for v in values]
        kinds = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        text = f"a table: {_type_name(key)} keys, {kinds} values"
    elif tp is bool:
        text = "`true`, `false`"
    else:
        text = _type_name(tp)
    bounds = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                bounds.append(f"{sign} {bound:g}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            bounds.append(f"matching `{pattern}`")
    if bounds:
        text += ", " + " and ".join(bounds)
    if optional:
        text += "; or unset"
    return text


# --- the schema ----------------------------------------------------------------------------


def sections():
    """(name, section model class) for every section of Config, in the schema's order."""
    out = []
    for name, field in C.Config.model_fields.items():
        model = field.annotation
        declared = getattr(model, "section", "") or name
        if declared != name:
            raise SystemExit(f"config_doc: Config.{name} is a section named {declared!r}")
        out.append((name, model))
    return out


def default_of(field):
    return field.get_default(call_default_factory=True)


def _choices(field) -> tuple:
    """The Literal choices of a field (also of an optional Literal), else ()."""
    tp = field.annotation
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if typing.get_origin(a) is typing.Literal), None)
    return typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else ()


def _befores(model) -> list:
    return [d.func for d in model.__pydantic_decorators__.model_validators.values() if d.info.mode == "before"]


def conditional_defaults() -> dict[str, list[tuple[str, str, list]]]:
    """{"mesh.h_min": [("3.0", "domain.geometry", ["layer", "slab"])]}: defaults that the
    schema's before-validators fill when another key takes one of its choices.

    Found by giving each Literal key of each section each of its other choices, alone, and
    applying the before-validators of Config (to {section: {key: choice}}) and of the
    section itself (to {key: choice}); every key they then fill with a value other than its
    own default is listed."""
    found: dict[str, dict[tuple[str, str], list]] = {}

    def record(section, table, cause, choice):
        fields = C.Config.model_fields[section].annotation.model_fields
        for key, value in table.items():
            full = f"{section}.{key}"
            if full == cause or key not in fields or value == default_of(fields[key]):
                continue
            found.setdefault(full, {}).setdefault((toml_literal(value), cause), []).append(choice)

    for name, model in sections():
        for key, field in model.model_fields.items():
            for choice in _choices(field):
                if choice == field.default or choice is None:
                    continue
                cause = f"{name}.{key}"
                try:
                    data = {name: {key: choice}}
                    for func in _befores(C.Config):
                        data = func(data)
                    for section, table in data.items():
                        if isinstance(table, dict):
                            record(section, table, cause, choice)
                    table = {key: choice}
                    for func in _befores(model):
                        table = func(table)
                    record(name, table, cause, choice)
                except Exception:  # a validator that refuses the probe fills nothing to show
                    continue
    return {key: [(literal, cause, choices) for (literal, cause), choices in by.items()] for key, by in found.items()}


def default_cell(key: str, field, conditional: dict) -> str:
    value = default_of(field)
    if value is None:
        note = UNSET.get(key)
        text = "unset" + (f": {note()}" if note else " (see meaning)")
    else:
        text = f"`{toml_literal(value)}`"
    for literal, cause, choices in conditional.get(key, []):
        values = " or ".join(f"`{toml_literal(c)}`" for c in choices)
        text += f"; `{literal}` where `{cause}` is {values} (unless given)"
    return text


def render() -> str:
    conditional = conditional_defaults()
    geometry_keys = ", ".join(f"`{k}`" for k, v in conditional.items() if any(c == "domain.geometry" for _, c, _ in v))
    constants_3d = ", ".join(f"`{n}`" for n in dir(C) if n.endswith("_3D") and n.isupper())
    module_doc = [p.strip() for p in (C.__doc__ or "").strip().split("\n\n")]
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `" + COMMAND + "` from the schema in app/config.py: do not edit by hand. -->",
        "<!-- tests/test_config_doc.py fails when this page is stale. -->",
        "",
        "Every key of the configuration, with its default, its unit and the values it accepts,",
        "generated from the pydantic schema in [app/config.py](../app/config.py) (the reference).",
        "",
        *(" ".join(p.split()) + "\n" for p in map(rst_to_md, module_doc[1:])),
        "## Setting keys",
        "",
        "Precedence, last wins: the defaults, `--config` files (in order), a preset's `[config]`,",
        "`--quick`, `--set`, and (in a figure) what defines each curve ([running.md](running.md)).",
        "",
        "- A TOML file, one table per section: `python -m app.run --config case.toml`",
        "  (repeatable; later files win).",
        "",
        "  ```toml",
        "  [model]",
        "  B0 = 2.0",
        "",
        "  [diffusion]",
        '  source = "lattice"',
        "  ```",
        "",
        "- On the command line: `--set model.B0=2` (repeatable). The value is a TOML literal",
        "  (number, boolean, array, quoted string) or else a bare string;",
        "  `--set solver.petsc_options.pc_type=gamg` nests.",
        '- From Python ([api.md](api.md)): `app.build(model={"B0": 2.0})`, or',
        '  `app.load("case.toml", overrides=["model.B0=2"])`.',
        "",
        "Bad input (an unknown key, a value of the wrong type or out of bounds, an infinite or",
        "NaN number, a boolean where a number belongs, a combination the schema refuses) is one",
        "line naming the key, e.g. `error: mesh.h_min: expected at most mesh.h_max = 20.0, got 30.0`,",
        "and exit code 2 before anything is written (`app.ConfigError` from Python).",
        "",
        '**Defaults that depend on other keys.** A default followed by "`x` where `k` is `v`',
        '(unless given)" is filled by a before-validator of the schema when key `k` has value `v`',
        'and this key is not given. In 3D (`domain.geometry` `"layer"` or `"slab"`) these are',
        f"{geometry_keys or 'none'} ({constants_3d or 'none'} in app/config.py; `mesh.mass` only where",
        "`mesh.degree` is 1, vertex lumping being for P1), from the mesh study in",
        '[model3d.md](model3d.md). "Unset" means the key has no value unless you give one;',
        "the table says what is used then.",
        "",
        "Unit `-`: a pure number, a count, a string, a flag or a table.",
        "",
    ]
    for name, model in sections():
        paragraphs = [" ".join(p.split()) for p in rst_to_md(model.__doc__ or "").strip().split("\n\n")]
        paragraphs[0] = re.sub(r"^`\[\w+\]`:\s*", "", paragraphs[0])
        paragraphs[0] = paragraphs[0][:1].upper() + paragraphs[0][1:]
        lines += [f"## `[{name}]`", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
        lines += ["| key | default | unit | meaning | allowed values |", "|---|---|---|---|---|"]
        for key, field in model.model_fields.items():
            full = f"{name}.{key}"
            unit, meaning = unit_and_meaning(field.description)
            lines.append(
                f"| `{full}` | {cell(default_cell(full, field, conditional))} | {cell(unit or '-')} "
                f"| {cell(meaning)} | {cell(allowed(field))} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is not what the schema gives")
    p.add_argument("--output", type=Path, default=PAGE, help="the page to write or check (default: docs/configuration.md)")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            message = f"{args.output}: stale: it differs from what the schema in app/config.py gives; run: {COMMAND}"
            print(message, file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
