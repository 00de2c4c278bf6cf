"""Notebook 03, building ResNets: read the blog's ResNet layer by layer, grow a plain CNN into ResNet-18, prove it
is torchvision's, and fit ResNet-18 to 28x28 digits. The diagrams live in :mod:`.diagrams` (matplotlib)."""
from .digits import (SETTINGS, digit_variant, format_runs, format_throughput, measure_throughput,  # noqa: F401
                     train_digit_models, variant_name)
from .grown import (RESNET18_LAYOUT, GrownResNet, PlainBlock, ProjectionBlock, SkipBlock, make_stage,  # noqa: F401
                    scaled_layout)
from .parity import Parity, compare_outputs, copy_weights, randomize_batchnorm, torchvision_parity  # noqa: F401
from .shapes import (BlockInfo, block_list, cost_table, describe_step, shape_trace_table, stage_layout,  # noqa: F401
                     summary, top_level_shapes, v1_stride_macs)
