"""Notebook 02, the residual block y = f(x) + x taken apart and checked numerically: the blog's first block and
its fixes, the block's gradient, the pre-activation block, shortcuts when the shape changes, and costs by formula."""
from ...models import projection_shortcut, zero_init_last_bn  # noqa: F401 - the notebook calls them from here
from .blog_blocks import (BlogFirstBlock, BlogFirstBlockNamesFixed, FixedBlock, as_basic_block,  # noqa: F401
                          block_kinds, source_of, try_forward)
from .gradients import (SETTINGS, PLAIN_VS_RESIDUAL, block_jacobians, format_gradient_table,  # noqa: F401
                        geometric_mean, gradient_through_body, gradient_vs_depth,
                        per_block_factor, plot_gradient_vs_depth, plot_jacobians, small_block, through_blocks,
                        two_block_jacobians)
from .preactivation import ORIGINAL_VS_PREACT, PreActBlock, PreActNet, preact_net  # noqa: F401
from .shortcuts_costs import (ZeroPadShortcut, basic_block_cost, block_cost_table, bottleneck_cost,  # noqa: F401
                              build_block, conv_cost, format_cost_table, projection_params, shortcut_macs)

