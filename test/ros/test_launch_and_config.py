"""Launch files, the params file and the rviz config: static checks, plus real loading where
the ROS packages exist."""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml

from hand_mesh_ros.config import RecorderConfig, StereoNodeConfig

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))
PARAMS = REPO / "config" / "hand_mesh.yaml"
NODE_CONFIGS = {"stereo_node": StereoNodeConfig, "recorder_node": RecorderConfig}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def _kw(call, key):
    return next((k.value for k in call.keywords if k.arg == key), None)


def test_expected_launch_files_exist():
    names = {p.name for p in LAUNCH_FILES}
    assert {"hand_mesh.launch.py", "mynt_d1000.launch.py", "record.launch.py",
            "adapt_from_bag.launch.py"} <= names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_arguments_have_descriptions(path):
    tree = ast.parse(path.read_text())
    decls = _calls(tree, "DeclareLaunchArgument")
    assert decls, "no launch arguments"
    for d in decls:
        desc = _kw(d, "description")
        assert isinstance(desc, ast.Constant) and len(desc.value) > 10, ast.dump(d)
    declared = {d.args[0].value for d in decls}
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")
            if isinstance(c.args[0], ast.Constant)}
    assert used <= declared, f"undeclared: {used - declared}"
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_parameters_and_remaps_match_the_nodes(path):
    tree = ast.parse(path.read_text())
    for node in _calls(tree, "Node"):
        exe = _kw(node, "executable").value
        if exe not in NODE_CONFIGS:
            continue
        valid = set(NODE_CONFIGS[exe].field_names())
        params = _kw(node, "parameters")
        for item in params.elts:
            if isinstance(item, ast.Dict):
                keys = {k.value for k in item.keys}
                assert keys <= valid, f"{exe}: unknown parameters {keys - valid}"
        remaps = _kw(node, "remappings")
        if remaps is not None and isinstance(remaps, ast.List):
            froms = {e.elts[0].value for e in remaps.elts}
            assert froms == {"left/image_rect", "left/camera_info", "right/image_rect",
                             "right/camera_info"}


def test_mynt_defaults_are_the_wrapper_topics():
    tree = ast.parse((LAUNCH / "mynt_d1000.launch.py").read_text())
    src = ast.unparse(tree)
    for topic in ("left/image_rect", "right/image_rect", "left/camera_info",
                  "right/camera_info"):
        assert f"{{MYNT_NS}}/{topic}" in src
    consts = {n.targets[0].id: n.value.value for n in tree.body if isinstance(n, ast.Assign)}
    assert consts["MYNT_NS"] == "/mynteye"


def _real_launch_available() -> bool:
    spec = importlib.util.find_spec("launch")
    if spec is None or spec.origin is None:  # the repo's launch/ folder is a namespace pkg
        return False
    return importlib.util.find_spec("launch_ros") is not None


@pytest.mark.skipif(not _real_launch_available(),
                    reason="ROS 2 'launch'/'launch_ros' are not installed (pip wheels lack "
                           "them); the static checks above cover the launch files")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_builds(path, monkeypatch):  # pragma: no cover - needs ROS launch
    import ament_index_python.packages as aip
    from launch import LaunchDescription

    monkeypatch.setattr(aip, "get_package_share_directory", lambda _p: str(REPO))
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert isinstance(mod.generate_launch_description(), LaunchDescription)


def test_params_file_matches_the_configs():
    data = yaml.safe_load(PARAMS.read_text())
    sections = (("/**/hand_mesh", StereoNodeConfig), ("/**/stereo_recorder", RecorderConfig))
    for key, cls in sections:
        params = data[key]["ros__parameters"]
        assert set(params) == set(cls.field_names())
        assert cls.from_dict(params) == cls(), "defaults drifted from the code"
        for f in dataclasses.fields(cls):
            assert type(params[f.name]) is type(getattr(cls(), f.name)), f.name


def test_params_file_loads_into_the_nodes(tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from hand_mesh_ros.recorder_node import RecorderNode
    from hand_mesh_ros.stereo_node import HandMeshNode

    text = PARAMS.read_text().replace("min_confidence: 0.3", "min_confidence: 0.45")
    text = text.replace('storage: "mcap"', 'storage: "sqlite3"')
    # the recorder autostarts: keep its bag out of the working directory
    text = text.replace('output_dir: "bags"', f'output_dir: "{tmp_path / "bags"}"')
    tmp = tmp_path / "params.yaml"
    tmp.write_text(text)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, args=["x", "--ros-args", "--params-file", str(tmp)])
    try:
        n = HandMeshNode(estimator=_NullEstimator(), context=ctx, namespace="cam")
        assert n.config.min_confidence == 0.45
        n.destroy_node()
        r = RecorderNode(context=ctx, parameter_overrides=[], namespace="cam",
                         automatically_declare_parameters_from_overrides=False)
        assert r.config.storage == "sqlite3"
        assert r.config.output_dir == str(tmp_path / "bags")
        r._accepting = False
        r.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


class _NullEstimator:
    def predict(self, left, right, camera, roi=None):
        return None


def test_rviz_config_displays_and_frame():
    rv = yaml.safe_load((REPO / "config" / "hand_mesh.rviz").read_text())
    vm = rv["Visualization Manager"]
    classes = {d["Class"]: d for d in vm["Displays"]}
    assert classes["rviz_default_plugins/Image"]["Topic"]["Value"].endswith("left/image_rect")
    assert classes["rviz_default_plugins/MarkerArray"]["Topic"]["Value"].endswith(
        "hand_mesh/markers")
    assert classes["rviz_default_plugins/PointCloud2"]["Topic"]["Value"].endswith(
        "hand_mesh/points")
    assert vm["Global Options"]["Fixed Frame"] == "mynteye_left_frame"
