"""The mesh as arrays every rank reads its own part of: the parallel half of the mesh cache.

Reading a Gmsh .msh goes through Gmsh on rank 0, which then sends every other rank its
cells: a serial step that took 10.3 s of an 11.2 s set-up at 7e5 dofs and grows with the
mesh. So, once, rank 0 turns the .msh into ``<directory>/<name>.arrays``: the cells, the
nodes and the tagged cells and boundary facets as raw arrays, the cells sorted along a
Morton (Z-order) curve of their centroids and the nodes numbered in the order the cells
first use them. Every run then reads it in parallel: rank p memory-maps the file and takes
the p-th contiguous block of cells and of nodes, and DOLFINx builds the mesh keeping each
cell on the rank that read it (a block of a space-filling curve is a compact part), so
no rank reads, sends or partitions the whole mesh.

The file: a magic line, the length of a JSON header (8 bytes, little-endian), the header
(format, the mesh's spec, each array's dtype, shape and offset, the SHA-256 of the
payload), then the arrays, each 64-byte aligned. Written atomically; a file whose header
or checksum does not match is ``stale`` or ``corrupt``, reported and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from app.runtime import compat
from app.runtime.output import atomic_write, make_room

MAGIC = b"OVERHAUSER-MESH-ARRAYS\n"
FORMAT = 1
ALIGN = 64
#: Gmsh element type of the cells of each dimension, and of their facets
GMSH_CELL = {2: 2, 3: 4}  # triangle, tetrahedron
GMSH_FACET = {2: 1, 3: 2}  # line, triangle


def path_for(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.arrays"


def morton_order(points: np.ndarray, bits: int = 20) -> np.ndarray:
    """The permutation that sorts ``points`` (n x d, d = 2 or 3) along a Morton curve."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    q = ((points - lo) / np.where(hi > lo, hi - lo, 1.0) * (2**bits - 1)).astype(np.uint64)
    key = np.zeros(len(points), dtype=np.uint64)
    d = points.shape[1]
    for bit in range(bits):
        for axis in range(d):
            key |= ((q[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(bit * d + axis)
    return np.argsort(key, kind="stable")


def from_gmsh(msh: Path, gdim: int) -> dict[str, np.ndarray]:
    """The arrays of a .msh (rank 0 alone): cells, nodes, cell_tags and facets (sorted node
    numbers of each tagged boundary facet, one row each) with facet_tags."""
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.merge(str(msh))
        tags, coords, _ = gmsh.model.mesh.getNodes()
        coords = coords.reshape(-1, 3)[:, :gdim]
        index = np.full(int(tags.max()) + 1, -1, dtype=np.int64)
        index[tags.astype(np.int64)] = np.arange(len(tags))

        def tagged(dim: int, etype: int) -> tuple[np.ndarray, np.ndarray]:
            rows, values = [], []
            for _, tag in gmsh.model.getPhysicalGroups(dim):
                for entity in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
                    _, nodes = gmsh.model.mesh.getElementsByType(etype, entity)
                    nodes = index[nodes.astype(np.int64)].reshape(-1, dim + 1)  # simplices
                    rows.append(nodes)
                    values.append(np.full(len(nodes), tag, dtype=np.int32))
            return np.concatenate(rows), np.concatenate(values)

        cells, cell_tags = tagged(gdim, GMSH_CELL[gdim])
        facets, facet_tags = tagged(gdim - 1, GMSH_FACET[gdim])
    finally:
        gmsh.finalize()
    # cells along a Morton curve; nodes numbered as the cells first use them
    order = morton_order(coords[cells].mean(axis=1))
    cells, cell_tags = cells[order], cell_tags[order]
    used, first = np.unique(cells.ravel(), return_index=True)
    by_use = used[np.argsort(first, kind="stable")]
    renumber = np.full(len(coords), -1, dtype=np.int64)
    renumber[by_use] = np.arange(len(by_use))
    return {
        "cells": renumber[cells],
        "nodes": np.ascontiguousarray(coords[by_use], dtype=np.float64),
        "cell_tags": cell_tags,
        "facets": np.sort(renumber[facets], axis=1),
        "facet_tags": facet_tags,
    }


def write(path: Path, arrays: dict[str, np.ndarray], spec_record: dict) -> None:
    """Write the arrays atomically (one process)."""
    layout, chunks, offset = {}, [], 0
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        pad = -offset % ALIGN
        chunks.append(b"\0" * pad)
        offset += pad
        layout[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
        chunks.append(a.tobytes())
        offset += a.nbytes
    payload = b"".join(chunks)
    header = json.dumps(
        {"format": FORMAT, "spec": spec_record, "arrays": layout, "sha256": hashlib.sha256(payload).hexdigest()},
        sort_keys=True,
    ).encode()

    def dump(f):
        f.write(MAGIC)
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        f.write(payload)

    make_room(path)
    atomic_write(path, dump, binary=True)


def _header(path: Path) -> tuple[dict, int]:
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a mesh-arrays file")
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return header, len(MAGIC) + 8 + n


def check(path: Path, spec_record: dict) -> str:
    """'hit', 'miss', 'stale' (another mesh or format under this name) or 'corrupt'."""
    if not path.exists():
        return "miss"
    try:
        header, start = _header(path)
        with path.open("rb") as f:
            f.seek(start)
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != header["sha256"]:
            return "corrupt"
        if header.get("format") != FORMAT or header.get("spec") != spec_record:
            return "stale"
    except (OSError, ValueError, KeyError, TypeError):
        return "corrupt"
    return "hit"


def node_count(path: Path) -> int:
    """The number of nodes of a checked file (its header alone is read)."""
    return int(_header(path)[0]["arrays"]["nodes"]["shape"][0])


def _block(n: int, comm) -> slice:
    """The contiguous block of ``n`` rows this rank reads."""
    lo, hi = (n * comm.rank) // comm.size, (n * (comm.rank + 1)) // comm.size
    return slice(lo, hi)


def read(path: Path, comm, gdim: int):
    """``(mesh, cell_tags, facet_tags)`` from a checked file, each rank reading its block
    (collective)."""
    import basix.ufl
    import ufl
    from dolfinx import mesh as dmesh

    header, start = _header(path)

    def load(name: str, rows: slice | None = None) -> np.ndarray:
        spec = header["arrays"][name]
        a = np.memmap(path, dtype=np.dtype(spec["dtype"]), mode="r", offset=start + spec["offset"],
                      shape=tuple(spec["shape"]))  # fmt: skip
        return np.array(a if rows is None else a[rows])

    n_cells = header["arrays"]["cells"]["shape"][0]
    mine = _block(n_cells, comm)
    cells = load("cells", mine)
    nodes = load("nodes", _block(header["arrays"]["nodes"]["shape"][0], comm))

    def keep(comm_, nparts, *args):  # each cell stays on the rank that read it
        return compat.partition(np.full(len(cells), comm_.rank, dtype=np.int32))

    shape = "triangle" if gdim == 2 else "tetrahedron"
    domain = ufl.Mesh(basix.ufl.element("Lagrange", shape, 1, shape=(gdim,)))
    mesh = dmesh.create_mesh(comm, cells, x=nodes, e=domain, partitioner=keep)  # 0.10 swapped x and e: by name
    tdim = mesh.topology.dim

    # cell tags: the local cells are this rank's block, in another order
    original = mesh.topology.original_cell_index
    original = np.asarray(original[0] if isinstance(original, list) else original)
    values = load("cell_tags", mine)[original - mine.start]
    local = np.arange(len(values), dtype=np.int32)
    cell_tags = dmesh.meshtags(mesh, tdim, local, values)

    # facet tags: match this rank's boundary facets, by their file node numbers, to the rows
    mesh.topology.create_connectivity(tdim - 1, tdim)  # the facets, with their vertices
    boundary = dmesh.exterior_facet_indices(mesh.topology)
    node_of_vertex = np.empty(mesh.topology.index_map(0).size_local + mesh.topology.index_map(0).num_ghosts, np.int64)
    c2v = mesh.topology.connectivity(tdim, 0).array.reshape(-1, tdim + 1)
    node_of_vertex[c2v] = mesh.geometry.dofmap
    file_node = np.asarray(mesh.geometry.input_global_indices, dtype=np.int64)[node_of_vertex]
    f2v = mesh.topology.connectivity(tdim - 1, 0).array.reshape(-1, tdim)
    mine_rows = np.sort(file_node[f2v[boundary]], axis=1)
    rows, row_values = load("facets"), load("facet_tags")
    lookup = {r.tobytes(): v for r, v in zip(rows, row_values, strict=True)}
    hit = [(f, lookup[r.tobytes()]) for f, r in zip(boundary, mine_rows, strict=True) if r.tobytes() in lookup]
    f_idx = np.array([f for f, _ in hit], dtype=np.int32)
    f_val = np.array([v for _, v in hit], dtype=np.int32)
    order = np.argsort(f_idx)
    facet_tags = dmesh.meshtags(mesh, tdim - 1, f_idx[order], f_val[order])
    return mesh, cell_tags, facet_tags
