"""Every DOLFINx version difference in one place, detected by feature, not version string.

Known: 0.9 (Debian trixie) and 0.11 (Debian sid). In 0.10 ``assemble_matrix``'s
``diagonal=`` became ``diag=``; ``element.interpolation_points`` became a property;
``mesh.create_mesh(comm, cells, x, e)`` became ``(comm, cells, e, x)`` (the callers name both);
``graph.adjacencylist`` returns a Python wrapper, where a partitioner must return the C++ list.
PyVista 0.44 (trixie) and 0.49 (sid): ``UnstructuredGrid.offset`` became ``cell_offsets``,
and ``extract_surface`` wants its ``algorithm`` named.
"""

from __future__ import annotations

import functools
import inspect


def vtx_writer(comm, path, functions):
    """VTX (ADIOS2 .bp) writer that stores the mesh once, where DOLFINx can (0.8 and later)."""
    from dolfinx import io

    kwargs = {"engine": "BP4"}
    if hasattr(io, "VTXMeshPolicy"):
        kwargs["mesh_policy"] = io.VTXMeshPolicy.reuse
    return io.VTXWriter(comm, str(path), functions, **kwargs)


@functools.cache
def _diagonal_keyword() -> str:
    from dolfinx.fem import petsc

    params = inspect.signature(petsc.assemble_matrix).parameters
    return "diag" if "diag" in params else "diagonal"


def assemble_matrix(form, bcs, diagonal: float):
    """``dolfinx.fem.petsc.assemble_matrix`` with ``diagonal`` on the rows of ``bcs``."""
    from dolfinx.fem import petsc

    return petsc.assemble_matrix(form, bcs=bcs, **{_diagonal_keyword(): diagonal})


def interpolation_points(element):
    """The reference interpolation points of a DOLFINx finite element (a method up to 0.9)."""
    points = element.interpolation_points
    return points() if callable(points) else points


def partition(destinations):
    """What a Python cell partitioner returns for ``destinations`` (int32, one rank per cell):
    the C++ adjacency list (0.10 wraps ``graph.adjacencylist``'s in a Python class)."""
    from dolfinx import graph

    adjacency = graph.adjacencylist(destinations)
    return getattr(adjacency, "_cpp_object", adjacency)


def cell_offsets(grid):
    """Where each cell's points start in ``grid.cell_connectivity`` (and the end), PyVista
    0.44 and 0.49."""
    return grid.cell_offsets if hasattr(grid, "cell_offsets") else grid.offset


def extract_surface(dataset):
    """The outer surface of a PyVista dataset, with today's algorithm named where PyVista
    asks for it (0.49 warns otherwise)."""
    if "algorithm" in inspect.signature(dataset.extract_surface).parameters:
        return dataset.extract_surface(algorithm="dataset_surface")
    return dataset.extract_surface()
