"""Independent serial peer of the product's diffusion solver, in plain NumPy + SciPy.

Solves du/dt = D laplace(u) on the product's Gmsh disk (R = 300 nm), D = 6.93 nm^2/s,
u = 0 on the rim, u(x, 0) = exp(-(x^2 + y^2) / r0^2) (interpolated at the nodes), r0 = 30 nm,
with P1 triangles (consistent mass M, stiffness K, rim rows/columns removed) and
variable-step BDF (orders 1, 2 at start-up, then --order, default 3) in quasi-constant
step-size form (backward differences, as in SciPy's `BDF`), from dt0 = 1e-3 s to 1e4 s.
The step changes only by powers of 2 (halved or more on rejection, doubled or x4 on growth),
so the matrix M + c dt K of each (order, step) is factorised once (splu; with --solver amg a
pyamg smoothed-aggregation hierarchy for CG, counted as "factorisations") and reused.
Local error estimate: max |e| / (rtol max |u(0)|).

Observable: h(t) / h(0), h = w . u, w_i = integral of exp(-r^2 / l0^2) phi_i dA (7-point
degree-5 rule), l0 = 30 nm, at t = 0 and 10 per decade from 0.01 s to 1e4 s; values between
steps come from the BDF interpolating polynomial (its dense output). Compared with the
infinite-plane exact curve (l0^2 + r0^2) / (l0^2 + r0^2 + 4 D t) over 0.01 <= t <= 300 s
(the rim changes it by < 1e-15 there); t_1/2 is interpolated linearly in log t.

    python3 benchmarks/peer_scipy.py [--mesh PATH] [--rtol X] [--solver lu|amg] [--out FILE.json]
    scripts/fenicsx python3 benchmarks/peer_scipy.py      (the same, in the product's root)

Prints one JSON line (dofs, steps, factorisations, wall times, error, t_1/2); --out writes
it with the curve (t_s, h_over_h0). The .msh reader handles ASCII MSH 4.1 $Nodes and
$Elements only (triangles = domain, lines = rim; other sections are skipped).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

D_COEF, R0, L0 = 6.93, 30.0, 30.0  # nm^2/s, nm, nm
DT0, T_END = 1e-3, 1e4
T_OUT = np.concatenate([[0.0], 10.0 ** np.arange(-2, 4 + 1e-9, 0.1)])
ERR_WINDOW = (0.01, 300.0)
NODES_PER_TYPE = {1: 2, 2: 3, 3: 4, 4: 4, 8: 3, 9: 6, 15: 1}
MAX_DOUBLINGS = 2  # the step grows by at most 2**MAX_DOUBLINGS at once
LU_CACHE = 3  # factorisations kept at once


def read_msh(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node coordinates (n, 2), triangles (m, 3) and rim lines (k, 2) as 0-based indices."""
    with open(path) as f:
        text = f.read()

    def section(name: str) -> np.ndarray:
        body = text[text.index(f"${name}\n") + len(name) + 2 : text.index(f"$End{name}")]
        return np.fromstring(body, dtype=np.float64, sep=" ")  # text mode: all whitespace

    a, i = section("Nodes"), 4
    tags, xyz = [], []
    for _ in range(int(a[0])):
        dim, param, n = int(a[i]), int(a[i + 2]), int(a[i + 3])
        i += 4
        tags.append(a[i : i + n])
        ncol = 3 + (dim if param else 0)
        xyz.append(a[i + n : i + n + n * ncol].reshape(n, ncol)[:, :2])
        i += n + n * ncol
    node_tags = np.concatenate(tags).astype(np.int64)
    index = np.full(node_tags.max() + 1, -1, dtype=np.int64)
    index[node_tags] = np.arange(node_tags.size)

    a, i = section("Elements"), 4
    blocks: dict[int, list[np.ndarray]] = {1: [], 2: []}
    for _ in range(int(a[0])):
        etype, n = int(a[i + 2]), int(a[i + 3])
        i += 4
        width = 1 + NODES_PER_TYPE[etype]
        if etype in blocks:
            blocks[etype].append(a[i : i + n * width].reshape(n, width)[:, 1:].astype(np.int64))
        i += n * width
    tri, lines = (index[np.concatenate(blocks[t])] for t in (2, 1))
    return np.concatenate(xyz), tri, lines


def assemble_p1(x: np.ndarray, tri: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Consistent mass M, stiffness K (times D) and element areas for P1 triangles."""
    p = x[tri]  # (m, 3, 2)
    b = np.roll(p[:, :, 1], -1, axis=1) - np.roll(p[:, :, 1], -2, axis=1)  # y_j - y_k
    c = np.roll(p[:, :, 0], -2, axis=1) - np.roll(p[:, :, 0], -1, axis=1)  # x_k - x_j
    area = 0.5 * np.abs(b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    ke = D_COEF * (b[:, :, None] * b[:, None, :] + c[:, :, None] * c[:, None, :]) / (4 * area)[:, None, None]
    me = (area / 12)[:, None, None] * (np.ones((3, 3)) + np.eye(3))
    t32 = tri.astype(np.int32)
    rows, cols = np.repeat(t32, 3, axis=1).ravel(), np.tile(t32, (1, 3)).ravel()
    n = x.shape[0]
    M = sp.coo_matrix((me.ravel(), (rows, cols)), shape=(n, n)).tocsr()
    K = sp.coo_matrix((ke.ravel(), (rows, cols)), shape=(n, n)).tocsr()
    return M, K, area


def observable_weights(x: np.ndarray, tri: np.ndarray, area: np.ndarray) -> np.ndarray:
    """w_i = integral of exp(-r^2 / l0^2) phi_i dA, 7-point degree-5 rule per triangle."""
    s = np.sqrt(15.0)
    a1, a2 = (6 - s) / 21, (6 + s) / 21
    bary = np.array(
        [[1 / 3, 1 / 3, 1 / 3]]
        + [np.roll([a1, a1, 1 - 2 * a1], k) for k in range(3)]
        + [np.roll([a2, a2, 1 - 2 * a2], k) for k in range(3)]
    )  # fmt: skip
    wq = np.array([9 / 40] + [(155 - s) / 1200] * 3 + [(155 + s) / 1200] * 3)
    xq = np.einsum("qi,mid->mqd", bary, x[tri])  # (m, 7, 2)
    f = np.exp(-(xq**2).sum(axis=2) / L0**2) * wq * area[:, None]  # (m, 7)
    return np.bincount(tri.ravel(), weights=(f @ bary).ravel(), minlength=x.shape[0])


def make_solver(A: sp.csr_matrix, kind: str, stats: dict):
    """x = solve(b, x0) for A: a sparse LU (x0 unused), or CG preconditioned by a pyamg hierarchy."""
    if kind == "lu":
        opts = {"SymmetricMode": True}  # A is SPD: symmetric ordering, diagonal pivots
        lu = spla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=opts)
        return lambda b, x0: lu.solve(b)
    import pyamg  # noqa: PLC0415 (lazy: optional dependency)

    P = pyamg.smoothed_aggregation_solver(A, symmetry="symmetric").aspreconditioner(cycle="V")

    def count(_xk) -> None:
        stats["cg_iterations"] += 1

    def solve(b: np.ndarray, x0: np.ndarray) -> np.ndarray:
        y, info = spla.cg(A, b, x0=x0, rtol=1e-9, M=P, callback=count)
        if info:
            raise RuntimeError(f"CG did not converge (info={info})")
        return y

    return solve


def compute_r(order: int, factor: float) -> np.ndarray:
    """Matrix that rescales backward differences to a step `factor` times larger (SciPy BDF)."""
    i = np.arange(1, order + 1)[:, None]
    j = np.arange(1, order + 1)
    m = np.zeros((order + 1, order + 1))
    m[1:, 1:] = (i - 1 - factor * j) / i
    m[0] = 1
    return np.cumprod(m, axis=0)


def change_step(Dif: np.ndarray, order: int, factor: float) -> None:
    ru = compute_r(order, factor) @ compute_r(order, 1.0)
    Dif[: order + 1] = ru.T @ Dif[: order + 1]


def dense_output(wd: np.ndarray, t_new: float, h: float, order: int, t: np.ndarray) -> np.ndarray:
    """w . u(t) from the interpolating polynomial through the last order + 1 steps."""
    x = (t[:, None] - (t_new - h * np.arange(order))) / (h * (1 + np.arange(order)))
    return wd[0] + np.cumprod(x, axis=1) @ wd[1 : order + 1]


def step_exponent(err: float, order: int) -> int:
    """k such that 2**k is the largest power of 2 not above the classical factor 0.9 err^(-1/(q+1))."""
    return int(np.floor(np.log2(0.9 * max(err, 1e-300) ** (-1 / (order + 1)))))


def update_differences(Dif: np.ndarray, d: np.ndarray, order: int) -> None:
    """Backward differences after an accepted step whose correction is d (SciPy BDF)."""
    Dif[order + 2] = d - Dif[order + 1]
    Dif[order + 1] = d
    for i in reversed(range(order + 1)):
        Dif[i] += Dif[i + 1]


def integrate(M, K, u0, w, rtol: float, kind: str, max_order: int) -> tuple[np.ndarray, dict]:
    """Variable-step BDF (orders 1..max_order at start-up), steps x2^k; returns h(T_OUT)/h(0)."""
    gamma = np.concatenate([[0.0], np.cumsum(1 / np.arange(1, max_order + 1))])
    err_const = 1 / np.arange(1, max_order + 2)
    Dif = np.zeros((max_order + 3, u0.size))
    Dif[0] = u0
    du0, _ = spla.cg(M, -(K @ u0), rtol=1e-12, M=sp.diags(1 / M.diagonal()))  # u'(0) = -M^-1 K u0
    Dif[1] = DT0 * du0
    scale = rtol * np.abs(u0).max()
    h_out = np.full(T_OUT.size, np.nan)
    h_out[T_OUT == 0] = w @ u0
    t, h, order, n_equal = 0.0, DT0, 1, 0
    solvers: dict[tuple[int, float], object] = {}  # (order, step) -> solve, oldest first
    stats = {"steps": 0, "rejected": 0, "factorisations": 0, "cg_iterations": 0}
    while t < T_END:
        if (order, h) not in solvers:
            if len(solvers) >= LU_CACHE:
                solvers.pop(next(iter(solvers)))
            solvers[order, h] = make_solver((M + (h / gamma[order]) * K).tocsr(), kind, stats)
            stats["factorisations"] += 1
        y_pred = Dif[: order + 1].sum(axis=0)
        psi = gamma[1 : order + 1] @ Dif[1 : order + 1] / gamma[order]
        d = solvers[order, h](M @ (y_pred - psi), y_pred) - y_pred  # (M + c K) y = M (y_pred - psi)
        err = err_const[order] * np.abs(d).max() / scale
        if err > 1:  # reject: shrink by 2^k, k <= -1, and retry
            factor = 2.0 ** min(-1, step_exponent(err, order))
            change_step(Dif, order, factor)
            h, n_equal = h * factor, 0
            stats["rejected"] += 1
            continue
        t, n_equal = t + h, n_equal + 1
        stats["steps"] += 1
        update_differences(Dif, d, order)
        sel = (T_OUT > t - h) & (T_OUT <= t)
        if sel.any():
            h_out[sel] = dense_output(w @ Dif[: order + 1].T, t, h, order, T_OUT[sel])
        if n_equal < order + 1:  # order + 1 equal steps before any change
            continue
        if order < max_order:
            order, n_equal = order + 1, 0
        elif (k := min(MAX_DOUBLINGS, step_exponent(err, order))) >= 1:
            change_step(Dif, order, 2.0**k)
            h, n_equal = h * 2.0**k, 0
    return h_out / h_out[0], stats


def exact(t: np.ndarray) -> np.ndarray:
    s = L0**2 + R0**2
    return s / (s + 4 * D_COEF * t)


def half_time(t: np.ndarray, h: np.ndarray) -> float:
    """First time h <= 0.5, linear in log t between the outputs around it."""
    i = int(np.argmax(h <= 0.5))
    lt = np.log(t[i - 1 : i + 1])
    return float(np.exp(lt[0] + (h[i - 1] - 0.5) / (h[i - 1] - h[i]) * (lt[1] - lt[0])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mesh", default="meshes/disk_R300_hmin2_hmax20_rf60_rc200.msh")
    ap.add_argument("--rtol", type=float, default=7e-4, help="local error tolerance, times max |u(0)| (7e-4: error ~2e-4)")
    ap.add_argument("--solver", choices=["lu", "amg"], default="lu")
    ap.add_argument("--order", type=int, choices=[2, 3], default=3, help="BDF order after start-up")
    ap.add_argument("--out", help="write the h(t)/h(0) curve to this JSON file")
    args = ap.parse_args()
    if args.solver == "amg":
        try:
            import pyamg  # noqa: F401, PLC0415
        except ImportError:
            sys.exit("peer_scipy: --solver amg needs pyamg, which is not installed (pip install pyamg)")

    t0 = time.perf_counter()
    x, tri, lines = read_msh(args.mesh)
    t1 = time.perf_counter()
    M, K, area = assemble_p1(x, tri)
    w = observable_weights(x, tri, area)
    free = np.setdiff1d(np.arange(x.shape[0]), np.unique(lines))
    M, K, w = M[free][:, free].tocsr(), K[free][:, free].tocsr(), w[free]
    u0 = np.exp(-(x[free] ** 2).sum(axis=1) / R0**2)
    t2 = time.perf_counter()
    h, stats = integrate(M, K, u0, w, args.rtol, args.solver, args.order)
    t3 = time.perf_counter()

    window = (T_OUT >= ERR_WINDOW[0]) & (T_OUT <= ERR_WINDOW[1])
    result = {
        "mesh": args.mesh, "solver": args.solver, "rtol": args.rtol, "order": args.order,
        "dofs": int(free.size), "nodes": int(x.shape[0]), "triangles": int(tri.shape[0]), **stats,
        "time_read_mesh_s": round(t1 - t0, 4), "time_assemble_s": round(t2 - t1, 4),
        "time_loop_s": round(t3 - t2, 4), "time_total_s": round(time.perf_counter() - T_START, 4),
        "max_err_vs_exact": float(np.abs(h - exact(T_OUT))[window].max()),
        "t_half_s": round(half_time(T_OUT, h), 3), "t_half_exact_s": round((L0**2 + R0**2) / (4 * D_COEF), 3),
    }  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"t_s": T_OUT.tolist(), "h_over_h0": h.tolist(), **result}, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
