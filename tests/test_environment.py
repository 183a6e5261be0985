"""The environment the product runs in (docker/apt-packages.txt), as the product sees it."""

from pathlib import Path

import numpy  # noqa: F401  (loads its BLAS)


def loaded_libraries() -> set[str]:
    return {Path(line.split()[-1]).name for line in Path("/proc/self/maps").read_text().splitlines() if "/" in line}


def test_numpy_uses_an_optimised_blas_not_the_reference_one():
    # the install leaves out recommended packages: without libopenblas0-serial in the list,
    # numpy, SciPy and PETSc fall back to the reference BLAS, 2.3-3.2x slower on the lattice
    # sums (docs/performance.md, "The BLAS")
    libs = loaded_libraries()
    optimised = ("libopenblas", "libmkl", "libblis")  # the environment's, or a FEniCSx of your own
    assert any(name.startswith(optimised) for name in libs), sorted(n for n in libs if "blas" in n)
