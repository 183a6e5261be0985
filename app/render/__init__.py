"""Pictures: matplotlib plots of curves and tables (:mod:`~app.render.plotting`) and PyVista
renders of the polarisation spreading, on the disk (:mod:`~app.render.render2d`) and on the
cylinder (:mod:`~app.render.render3d`). PyVista is imported only when a render is made."""
