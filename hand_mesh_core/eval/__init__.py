"""Evaluation: metrics (``metrics``), figures (``plots``), the runner (``evaluate``) and the
paper-table experiments (``experiments``); settings in ``config``.

Nothing is imported here, so that ``import hand_mesh_core.eval.metrics`` does not pull in
matplotlib.
"""
