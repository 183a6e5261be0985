"""The Gmsh disk of the 2D model, fine at the dot centre and coarse at the rim (nm), and the
tags of its mesh. The cylinder of the 3D model (:mod:`app.numerics.cylinder`) extrudes it;
:mod:`app.numerics.mesh` caches either.
"""

from __future__ import annotations

from dataclasses import dataclass

#: physical group tags written to the .msh
DISK_TAG = 1
RIM_TAG = 2


def number_tag(x: float) -> str:
    """A number as it appears in a mesh file name: 2.5 -> '2p5'."""
    return f"{x:g}".replace(".", "p")


@dataclass(frozen=True)
class DiskSpec:
    """Geometry and size field of the disk mesh, nm."""

    radius: float = 300.0
    h_min: float = 2.0
    h_max: float = 20.0
    fine_radius: float = 60.0
    coarse_radius: float = 200.0

    @classmethod
    def from_config(cls, config) -> DiskSpec:
        m = config.mesh
        return cls(config.domain.radius, m.h_min, m.h_max, m.fine_radius, m.coarse_radius)

    @property
    def name(self) -> str:
        f = number_tag
        return (
            f"disk_R{f(self.radius)}_hmin{f(self.h_min)}_hmax{f(self.h_max)}"
            f"_rf{f(self.fine_radius)}_rc{f(self.coarse_radius)}"
        )

    gdim = 2

    def build(self) -> None:
        """Make the Gmsh model of the disk in the current (initialised) Gmsh session."""
        import gmsh

        gmsh.model.add("disk")
        disk = base_disk(self)
        gmsh.model.addPhysicalGroup(2, [disk], DISK_TAG, name="disk")
        rim = [c[1] for c in gmsh.model.getBoundary([(2, disk)], oriented=False)]
        gmsh.model.addPhysicalGroup(1, rim, RIM_TAG, name="rim")
        gmsh.model.mesh.generate(2)


def base_disk(spec) -> int:
    """The OCC disk of ``spec.radius`` with a node at the centre and the size field of ``spec``
    (h_min within fine_radius, growing linearly to h_max at coarse_radius); returns its tag."""
    import gmsh

    occ = gmsh.model.occ
    disk = occ.addDisk(0.0, 0.0, 0.0, spec.radius, spec.radius)
    centre = occ.addPoint(0.0, 0.0, 0.0)
    occ.synchronize()
    gmsh.model.mesh.embed(0, [centre], 2, disk)  # a node exactly at the dot centre
    field = gmsh.model.mesh.field
    dist = field.add("Distance")
    field.setNumbers(dist, "PointsList", [centre])
    thr = field.add("Threshold")
    field.setNumber(thr, "InField", dist)
    field.setNumber(thr, "SizeMin", spec.h_min)
    field.setNumber(thr, "SizeMax", spec.h_max)
    field.setNumber(thr, "DistMin", spec.fine_radius)
    field.setNumber(thr, "DistMax", spec.coarse_radius)
    field.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay
    return disk


