"""Shared fixtures: one hand rig per test session (building the procedural model takes s)."""
import pytest
import torch

from hand_mesh_core.data.synth.config import load_domain
from hand_mesh_core.data.synth.generator import HandRig, SynthGenerator

#: Small cameras keep rendering fast in tests: 1/4 of 640x480.
TEST_CAMERA_SCALE = 0.25


@pytest.fixture(scope="session")
def rig():
    torch.set_num_threads(1)
    return HandRig()


def small_generator(rig, name, scale=TEST_CAMERA_SCALE):
    domain = load_domain(name)
    domain = domain.with_camera(domain.camera.scaled(scale))
    return SynthGenerator(domain, rig, nthreads=1)


@pytest.fixture(scope="session")
def lab_gen(rig):
    return small_generator(rig, "target_lab")


@pytest.fixture(scope="session")
def studio_gen(rig):
    return small_generator(rig, "source_studio")
