"""Synthetic stereo hand data with a real domain gap (see ``docs/data.md``).

``DomainConfig`` presets (``config/domains/*.yaml``) -> ``SynthGenerator`` (ray-traced stereo
pair + labels) -> ``write_dataset`` (on-disk layout) -> ``SynthStereoDataset`` (torch Dataset of
``StereoSample``).
"""
from hand_mesh_core.data.synth.config import DomainConfig, load_domain
from hand_mesh_core.data.synth.dataset import SynthStereoDataset
from hand_mesh_core.data.synth.generator import (GENERATOR_VERSION, HandRig, SynthGenerator,
                                                 SynthSample)
from hand_mesh_core.data.synth.writer import WriteResult, write_dataset

__all__ = ["DomainConfig", "load_domain", "SynthGenerator", "SynthSample", "HandRig",
           "GENERATOR_VERSION", "write_dataset", "WriteResult", "SynthStereoDataset"]
