"""The residual block, y = f(x) + x, taken apart and checked numerically (notebook 02, which imports it as ``bm``).

* :mod:`.blog_blocks`: the blog's first block with exactly its two defects (:class:`BlogFirstBlock`), the
  steps that fix it (:class:`BlogFirstBlockNamesFixed`, :class:`BlogFirstBlockStrideUsed`, :class:`FixedBlock`),
  :func:`try_forward`, and :func:`block_kinds` (the kind of block and the kind of shortcut are separate choices).
* :mod:`.gradients`: dy/dx = I + df/dx for one block (:func:`block_jacobians`) and two
  (:func:`two_block_jacobians`), and the gradient that reaches the input of L blocks
  (:func:`gradient_vs_depth`, plain vs residual, or original vs pre-activation).
* :mod:`.preactivation`: He et al. (2016)'s pre-activation block (:class:`PreActBlock`) and a net of them.
* :mod:`.shortcuts_costs`: option A (:class:`ZeroPadShortcut`) and option B (the projection, from
  :func:`course_lib.models.shortcut`, the course's one rule), and costs by formula (:func:`block_cost_table`).
"""
from ...models import projection_shortcut, zero_init_last_bn  # noqa: F401 - the notebook calls them as bm.*
from .blog_blocks import (BlogFirstBlock, BlogFirstBlockNamesFixed, BlogFirstBlockStrideUsed,  # noqa: F401
                          FixedBlock, as_basic_block, block_kinds, expected_shape, source_of, try_forward)
from .gradients import (GRADIENT_SETTINGS, PLAIN_VS_RESIDUAL, block_jacobians, format_gradient_table,  # noqa: F401
                        geometric_mean, gradient_through_body, gradient_vs_depth, input_gradient_norm,
                        per_block_factor, plot_gradient_vs_depth, plot_jacobians, small_block, two_block_jacobians)
from .preactivation import ORIGINAL_VS_PREACT, PreActBlock, PreActNet, preact_net  # noqa: F401
from .shortcuts_costs import (ZeroPadShortcut, basic_block_cost, block_cost_table, bottleneck_cost,  # noqa: F401
                              build_block, conv_cost, format_cost_table, projection_params, shortcut_macs)

