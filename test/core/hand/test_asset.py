"""The shipped procedural-hand asset is exactly what the construction builds on this machine."""
import numpy as np

from hand_mesh_core.hand.config import HandModelConfig
from hand_mesh_core.hand.model import (HandModel, build_procedural_arrays,
                                       procedural_asset_path)


def test_shipped_asset_matches_a_fresh_build():
    c = HandModelConfig()
    args = (c.grid_spacing_m, c.target_vertices, c.skin_blend_m, c.regressor_neighbours)
    path = procedural_asset_path(*args)
    assert path.is_file(), f"regenerate with write_procedural_asset(): {path}"
    from safetensors.numpy import load_file

    shipped = load_file(str(path))
    fresh = build_procedural_arrays(*args)
    assert set(shipped) == set(fresh)
    np.testing.assert_array_equal(shipped["faces"], fresh["faces"])
    for key in fresh:
        np.testing.assert_allclose(shipped[key], fresh[key], atol=1e-9, err_msg=key)
    assert HandModel.procedural().num_vertices == len(fresh["vertices"])
