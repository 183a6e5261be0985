"""Every DOLFINx version difference in one place, detected by feature, not version string."""

from __future__ import annotations

from dolfinx.io import gmshio


def read_msh(path, comm, gdim: int = 2):
    """``(mesh, cell_tags, facet_tags)`` from a .msh file, read quietly on rank 0.

    ``model_to_mesh`` is collective and is called on every rank; DOLFINx 0.9 returns a
    tuple, later versions a MeshData object.
    """
    import gmsh

    if comm.rank == 0:
        gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.merge(str(path))
    try:
        data = gmshio.model_to_mesh(gmsh.model if comm.rank == 0 else None, comm, 0, gdim=gdim)
    finally:
        if comm.rank == 0:
            gmsh.finalize()
    if hasattr(data, "mesh"):
        return data.mesh, data.cell_tags, data.facet_tags
    return data[0], data[1], data[2]


def vtx_writer(comm, path, functions):
    """VTX (ADIOS2 .bp) writer that stores the mesh once, where DOLFINx can (0.8 and later)."""
    from dolfinx import io

    kwargs = {"engine": "BP4"}
    if hasattr(io, "VTXMeshPolicy"):
        kwargs["mesh_policy"] = io.VTXMeshPolicy.reuse
    return io.VTXWriter(comm, str(path), functions, **kwargs)
