"""Notebook 01 and ``python -m course_lib degradation``: does a deeper plain net end with the higher training
error (He et al. 2015's degradation), and why: gradient flow at initialisation, the depth sweep, the identity."""
from .figures import plot_nested_classes, plot_sweep_curves, plot_sweep_depth
from .gradients import (REGIMES, digit_batch, gradient_flow, gradient_norms, input_to_output_ratio, orders_per_layer,
                        output_gradient_norms, plot_gradient_flow, prediction_rows, predicted_orders_per_layer,
                        print_gradient_ratios, print_prediction_table, regime_net)
from .identity import identity_experiment, identity_features, identity_stack, plot_identity, print_identity
from .protocol import PROTOCOL, SETTINGS, build_net
from .sweep import (degradation_verdict, final_loss, final_losses, print_catch_up, print_summary,
                    print_trained_gradients, print_verdict, run_sweep, summarize, sweep, sweep_data, train_depth_net)
