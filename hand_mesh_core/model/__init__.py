"""The binocular hand mesh network, its z-head (monocular) variant and checkpoints."""
from hand_mesh_core.model.checkpoint import (CheckpointError, CheckpointInfo, load_checkpoint,
                                             read_checkpoint_info, save_checkpoint)
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.decode import CropBatch, decode_mono, decode_stereo
from hand_mesh_core.model.network import HandMeshNet, HandNetOutput
from hand_mesh_core.model.topology import HandTopology

__all__ = ["CheckpointError", "CheckpointInfo", "load_checkpoint", "read_checkpoint_info",
           "save_checkpoint", "NetworkConfig", "CropBatch", "decode_mono", "decode_stereo",
           "HandMeshNet", "HandNetOutput", "HandTopology"]
