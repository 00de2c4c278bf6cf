"""Notebook 01, the degradation problem, measured (and ``python -m course_lib degradation``).

The course's definition (He et al. 2015): at the end of the same training schedule, the deeper plain network
ends with the higher training error, so it is not overfitting. Three experiments, each returning plain data
(dicts and lists) that the notebook plots and the CLI writes as JSON:

* ``gradients`` -- per-layer gradient norms at initialisation (of the weights, and of each layer's output) in
  four regimes (no BN or BN, PyTorch's default init or He init), plain nets of several depths and a residual
  net for reference;
* ``sweep`` -- plain and residual nets of several depths trained with the same schedule, several seeds, read
  at two budgets or more (the ``degradation`` command); ``figures`` draws it;
* ``identity`` -- can a stack of extra layers learn to copy its input?

Sizes live in ``protocol.SETTINGS``, one row per run profile. The sweep always trains on the embedded
5,000-digit sample, so its result is the same on every machine.
"""
from .figures import plot_sweep_curves, plot_sweep_depth
from .gradients import (REGIMES, depth_style, digit_batch, gradient_flow, gradient_norms, input_to_output_ratio,
                        net_label, orders_per_layer, output_gradient_norms, plot_gradient_flow,
                        prediction_rows, predicted_orders_per_layer, print_gradient_ratios, print_prediction_table,
                        regime_net, weight_layers, without_biases)
from .identity import (IDENTITY_KINDS, identity_experiment, identity_features, identity_stack, plot_identity,
                       print_identity)
from .protocol import BUILDERS, PROTOCOL, SETTINGS, build_net, settings
from .sweep import (FINAL_LOSS_DEFINITION, budget_steps, degradation_verdict, final_loss, final_losses,
                    print_catch_up, print_summary, print_trained_gradients, print_verdict, run_sweep, summarize,
                    sweep, sweep_data, train_depth_net)
