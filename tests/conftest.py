"""What the whole test session shares, so that the suite stays fast (docs/testing.md).

Most of the suite's time is XLA compiling small programs. Many test files compile
the same ones (the same tiny CartPole config, the same chunk sizes), and the CLI
and multi-process tests compile them again in subprocesses. JAX's persistent
compilation cache, in a folder made for this session and shared by the xdist
workers and every subprocess they start (through the environment), compiles each
program once. A cached executable is the one XLA built, so bitwise comparisons are
unaffected; the cache key covers the program, the devices and XLA_FLAGS. Set
JAX_COMPILATION_CACHE_DIR yourself to keep a cache between sessions. XLA also
optimizes less (FAST_COMPILE_FLAGS), the longest files start first (LONGEST_FIRST),
and SLOW lists the tests `make test-fast` leaves out.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
_MADE_HERE = "JPPO_TEST_CACHE_MADE_HERE"

# Cheaper compiles: most of the suite's time is XLA compiling tiny programs on one
# core each. LLVM at its lowest optimization level, without its expensive passes,
# compiles them in about 2/3 of the time (the programs run a few updates, so slower
# code costs little). Appended to the user's XLA_FLAGS when conftest is imported
# (before jax creates its CPU client), so xdist workers and every subprocess inherit
# them; a flag the user set wins. A test that sets XLA_FLAGS for a child appends to
# os.environ's value (`with_devices`).
FAST_COMPILE_FLAGS = {"--xla_backend_optimization_level": "0",
                      "--xla_llvm_disable_expensive_passes": "true"}


def add_fast_compile_flags(flags: str) -> str:
    """`flags` with each of FAST_COMPILE_FLAGS it does not set appended."""
    added = [f"{name}={value}" for name, value in FAST_COMPILE_FLAGS.items() if name not in flags]
    return " ".join([flags, *added]).strip()


os.environ["XLA_FLAGS"] = add_fast_compile_flags(os.environ.get("XLA_FLAGS", ""))
# Every compiled program goes into the session's cache, not only those that took a
# second (the default; at -O0 most compile faster): subprocesses and later tests
# that compile the same program read it back.
MIN_COMPILE_TIME = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
os.environ.setdefault(MIN_COMPILE_TIME, "0")


def with_devices(count: int) -> str:
    """XLA_FLAGS for a child process with `count` forced host devices, keeping the
    session's flags (the last device count given wins)."""
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"


def pytest_configure(config) -> None:
    """Runs in the controller before the workers start, so they inherit the folder."""
    if os.environ.get(CACHE_VARIABLE) or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="jppo-test-xla-cache-")
    os.environ[_MADE_HERE] = "1"
    if "jax" in sys.modules:  # imported before the variables were set: tell it directly
        sys.modules["jax"].config.update("jax_compilation_cache_dir",
                                         os.environ[CACHE_VARIABLE])
        sys.modules["jax"].config.update("jax_persistent_cache_min_compile_time_secs",
                                         float(os.environ[MIN_COMPILE_TIME]))


def pytest_unconfigure(config) -> None:
    if os.environ.get(_MADE_HERE) and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ.pop(CACHE_VARIABLE), ignore_errors=True)
        os.environ.pop(_MADE_HERE, None)


# ------------------------------------------------------------------ the slow tests
# `make test-fast` (`-m "not slow"`) runs the rest in under two minutes on 2 cores;
# `make test` runs everything. A test is slow when it compiles training programs
# (seconds each on a CPU) or starts processes; an entry is a file (all its tests)
# or a file::test (every parametrization). tests/architecture/test_test_layout.py
# checks that each entry names a file and test that exist.
SLOW: tuple[str, ...] = (
    "tests/analysis/test_fix.py::test_a_reproduced_failure_is_fixed_next_to_the_original_and_re_diagnosed",
    "tests/analysis/test_fix.py::test_sb3_and_cleanrl_plans_speak_their_trainers_names",
    "tests/cli/test_cli.py::test_fix_of_other_trainers_logs_prints_their_names_and_runs_nothing",
    "tests/cli/test_cli.py::test_fix_runs_the_plan_next_to_the_original_and_reports",
    "tests/analysis/test_diagnose.py::test_diagnose_run_writes_the_report",
    "tests/analysis/test_diagnose.py::test_failing_run_is_flagged",
    "tests/analysis/test_diagnose.py::test_healthy_run_learns_and_flags_nothing",
    "tests/analysis/test_diagnose.py::test_reports_cover_every_cell",
    "tests/analysis/test_diagnose_logs.py::test_a_corrupted_or_empty_event_file_is_a_one_line_error_naming_it",
    "tests/analysis/test_diagnose_logs.py::test_a_typo_in_map_or_an_unknown_source_is_a_one_line_error",
    "tests/analysis/test_diagnose_logs.py::test_rules_without_their_metrics_are_listed_as_not_judged",
    "tests/analysis/test_diagnose_logs.py::test_runs_logged_with_the_reports_sb3_callback_are_judged_by_every_rule",
    "tests/analysis/test_diagnose_logs.py::test_seeds_of_one_config_form_one_cell_and_configs_are_compared",
    "tests/analysis/test_diagnose_logs.py::test_the_summary_gives_jppos_final_return_statistics_per_cell",
    "tests/analysis/test_diagnosis_causes.py::test_the_test_split_has_its_own_envs_and_injections_all_labelled",
    "tests/analysis/test_diagnosis_causes.py::test_the_holdout_split_has_envs_and_injections_neither_other_split_has",
    "tests/analysis/test_plots.py::test_an_evaluated_run_also_gets_its_training_return_curves",
    "tests/analysis/test_plots.py::test_kl_early_stopping_variants_add_an_epochs_panel",
    "tests/analysis/test_plots.py::test_legend_reads_row_by_row_in_variant_order",
    "tests/analysis/test_plots.py::test_legend_with_many_long_names_fits_inside_the_figure",
    "tests/analysis/test_plots.py::test_missing_metrics_do_not_crash",
    "tests/analysis/test_plots.py::test_units_note_lies_inside_the_figure",
    "tests/analysis/test_plots.py::test_variants_past_ten_share_no_color_and_style",
    "tests/analysis/test_plots.py::test_write_plots_writes_valid_pngs",
    "tests/analysis/test_stats.py::test_confidence_level_sets_the_interval",
    "tests/architecture/test_code_shape.py::test_no_function_is_longer_than_a_screen",
    "tests/architecture/test_packaging.py::test_editable_install_resolves_jppo_envs_from_any_cwd",
    "tests/architecture/test_packaging.py::test_installed_wheel_trains_diagnoses_and_runs_the_readme_example",
    "tests/architecture/test_packaging.py::test_sdist_builds_the_same_packages",
    "tests/architecture/test_packaging.py::test_top_level_envs_import_is_refused_in_a_checkout",
    "tests/architecture/test_packaging.py::test_wheel_holds_jppo_and_its_envs_only",
    "tests/bench/test_children.py::test_the_parent_is_set_before_jax_starts",
    "tests/bench/test_reference_and_profile.py::test_cli_bench_forwards_the_reference_and_profile_flags",
    "tests/bench/test_reference_and_profile.py::test_phases_compose_into_the_update",
    "tests/bench/test_reference_and_profile.py::test_reference_learns_cartpole_on_a_small_budget",
    "tests/bench/test_reference_and_profile.py::test_top_ops_names_operations_of_the_compiled_phase",
    "tests/bench/test_reference_and_profile.py::test_versus_reports_medians_and_the_median_pair_ratio",
    "tests/bench/test_eval_cost.py::test_tiny_eval_cost_times_both_sides_and_reports_the_median_cost",
    "tests/bench/test_study.py::test_cli_bench_forwards_the_study_flags",
    "tests/bench/test_study.py::test_grid_has_n_traced_points_over_vf_coef_and_the_value_gain",
    "tests/bench/test_study.py::test_reference_critic_output_layer_scales_with_the_value_output_gain",
    "tests/bench/test_study.py::test_tiny_study_times_both_sides_and_reports_the_median_ratio",
    "tests/cli/test_cli.py",
    "tests/core/test_config_defaults.py::test_batch_scaled_value_loss_on_a_collected_batch_against_numpy",
    "tests/core/test_config_defaults.py::test_reset_observations_alone_clip_much_of_the_first_rollout",
    "tests/core/test_config_defaults.py::test_warmed_up_statistics_clip_almost_nothing_in_the_first_rollout",
    "tests/core/test_custom_variant.py::test_a_registered_loss_runs_compiled_exactly_like_its_built_in_twin",
    "tests/core/test_custom_variant.py::test_custom_variant_example_runs_on_a_tiny_budget",
    "tests/core/test_custom_variant.py::test_imports_from_the_command_line_and_jppo_config",
    "tests/core/test_distributions.py::test_categorical_sample_frequencies_match_probabilities",
    "tests/core/test_distributions.py::test_dispatch_continuous_broadcasts_a_shared_log_std",
    "tests/core/test_distributions.py::test_dispatch_discrete",
    "tests/core/test_distributions.py::test_gaussian_sample_mean_and_std",
    "tests/core/test_evaluation.py::test_act_normalizes_then_takes_the_mode_of_the_policy_head",
    "tests/core/test_evaluation.py::test_evaluation_does_not_change_training",
    "tests/core/test_evaluation.py::test_export_round_trip_is_exact",
    "tests/core/test_evaluation.py::test_final_return_uses_the_evaluations_and_says_so",
    "tests/core/test_evaluation.py::test_greedy_action_is_the_mode_of_each_distribution",
    "tests/core/test_evaluation.py::test_in_run_evaluation_matches_step_by_step_episodes",
    "tests/core/test_evaluation.py::test_jppo_eval_prints_a_row_per_seed",
    "tests/core/test_evaluation.py::test_load_policy_reproduces_the_final_evaluation_exactly",
    "tests/core/test_evaluation.py::test_policy_file_is_self_contained",
    "tests/core/test_evaluation.py::test_recurrent_evaluation_matches_hand_stepping_and_leaves_training_unchanged",
    "tests/core/test_evaluation.py::test_recurrent_policy_from_run_and_file_reproduces_the_final_evaluation",
    "tests/core/test_evaluation.py::test_recurrent_policy_steps_with_an_explicit_carry",
    "tests/core/test_evaluation.py::test_selectors_fail_in_one_line_listing_what_exists",
    "tests/core/test_gae.py::test_gae_matches_numpy_reference_for_several_lambdas",
    "tests/core/test_knobs.py::test_config_command_lists_every_knob",
    "tests/core/test_knobs.py::test_config_markdown_has_a_row_per_knob",
    "tests/core/test_knobs.py::test_manual_knob_table_is_the_generated_one",
    "tests/core/test_knobs.py::test_traced_sweepable_and_static_key_sets_equal_the_old_lists",
    "tests/core/test_losses.py::test_approx_kl_k1_can_be_negative_but_k3_cannot",
    "tests/core/test_losses.py::test_clipped_surrogate_gradient_is_zero_exactly_where_the_clip_is_pessimistic",
    "tests/core/test_losses.py::test_clipped_value_loss_gradient_vanishes_on_clipped_samples",
    "tests/core/test_lr_schedule.py::test_adam_applies_the_decayed_rate_at_each_step",
    "tests/core/test_lr_schedule.py::test_linear_decay_to_a_floor_over_a_fraction_then_holds",
    "tests/core/test_multidiscrete.py::test_a_bare_multidiscrete_env_is_accepted_and_wrapped",
    "tests/core/test_multidiscrete.py::test_a_multidiscrete_user_env_trains",
    "tests/core/test_multidiscrete.py::test_entropy_is_the_sum_of_component_entropies",
    "tests/core/test_multidiscrete.py::test_log_prob_is_the_sum_of_component_log_probs",
    "tests/core/test_multidiscrete.py::test_samples_have_one_component_per_nvec_entry_with_the_right_marginals",
    "tests/core/test_multidiscrete.py::test_space_samples_and_contains",
    "tests/core/test_network_variants.py::test_pfo_penalty_and_pre_activations_match_numpy",
    "tests/core/test_network_variants.py::test_quantile_huber_matches_the_elementwise_definition",
    "tests/core/test_network_variants.py::test_quantile_regression_recovers_the_target_quantiles",
    "tests/core/test_network_variants.py::test_quantile_simba_critic_and_pfo_in_one_compiled_step",
    "tests/core/test_network_variants.py::test_shrink_perturb_inside_the_update_mixes_toward_a_fresh_init",
    "tests/core/test_networks.py::test_cnn_conv_kernel_is_orthogonal_with_gain_sqrt2",
    "tests/core/test_networks.py::test_cnn_torso_shapes_with_separate_networks",
    "tests/core/test_networks.py::test_config_override_to_mlp_flattens_the_image_inside_the_network",
    "tests/core/test_networks.py::test_continuous_shapes",
    "tests/core/test_networks.py::test_conv_encoder_keeps_flax_conv_params_init_and_outputs",
    "tests/core/test_networks.py::test_deep_value_net_with_layer_norm_has_the_right_params",
    "tests/core/test_networks.py::test_discrete_shapes_cartpole_like",
    "tests/core/test_networks.py::test_hidden_layers_are_orthogonal_with_gain_sqrt2",
    "tests/core/test_networks.py::test_layer_norm_makes_the_initial_value_invariant_to_input_scale",
    "tests/core/test_networks.py::test_log_std_init_is_respected",
    "tests/core/test_networks.py::test_orthogonal_init_equals_jax_orthogonal",
    "tests/core/test_networks.py::test_output_gain_only_rescales_the_same_orthogonal_kernel",
    "tests/core/test_networks.py::test_output_gains_apply_on_the_cnn_torso",
    "tests/core/test_networks.py::test_param_labels_assign_policy_and_value_groups",
    "tests/core/test_networks.py::test_patch_conv_equals_flax_conv_in_value_and_kernel_gradient",
    "tests/core/test_networks.py::test_policy_head_singular_values_equal_policy_output_gain",
    "tests/core/test_networks.py::test_shared_torso_network",
    "tests/core/test_networks.py::test_shared_torso_shares_one_conv",
    "tests/core/test_networks.py::test_value_activation_defaults_to_activation_and_can_differ",
    "tests/core/test_networks.py::test_value_head_kernel_has_norm_equal_to_value_output_gain",
    "tests/core/test_networks.py::test_value_head_stays_configurable_on_the_cnn_torso",
    "tests/core/test_networks.py::test_vmapped_per_seed_conv_is_no_grouped_convolution",
    "tests/core/test_optim.py::test_clipping_is_global_across_groups_and_changes_the_update",
    "tests/core/test_optim.py::test_first_adam_step_moves_every_parameter_by_its_group_learning_rate",
    "tests/core/test_optim.py::test_learning_rate_follows_the_schedule_per_optimizer_step",
    "tests/core/test_optim.py::test_learning_rates_in_force_are_the_schedule_values",
    "tests/core/test_optim.py::test_make_optimizer_accepts_traced_hyperparameters",
    "tests/core/test_optim.py::test_updates_match_a_numpy_clip_then_adam_reference",
    "tests/core/test_pixel_observations.py::test_a_pixel_env_trains_a_few_updates",
    "tests/core/test_pixel_observations.py::test_obs_norm_statistics_are_per_pixel",
    "tests/core/test_pixel_observations.py::test_run_json_records_the_resolved_torso",
    "tests/core/test_pixel_observations.py::test_the_image_reaches_the_network_unflattened",
    "tests/core/test_policy_std.py::test_a_softplus_policy_trains_and_reports_its_mean_log_std",
    "tests/core/test_other_trainers_settings.py::test_terminal_truncation_drops_the_bootstrap_at_time_limits",
    "tests/core/test_policy_objectives.py::test_dpo_inside_the_update_reads_its_hyperparameters",
    "tests/core/test_policy_objectives.py::test_kl_penalty_return_percentile_and_adaptive_lr_inside_the_update",
    "tests/core/test_recurrent.py::test_carries_restart_at_episode_starts_like_a_hand_stepped_gru",
    "tests/core/test_recurrent.py::test_learning_reruns_reproduce_the_acting_pass",
    "tests/core/test_recurrent.py::test_masked_cartpole_shows_positions_only_also_in_final_observations",
    "tests/core/test_recurrent.py::test_policy_step_is_the_single_step_api_for_both_kinds",
    "tests/core/test_recurrent.py::test_recurrent_run_equals_solo_runs_and_resumes_bitwise",
    "tests/core/test_recurrent.py::test_sequence_minibatches_keep_each_env_whole_and_in_order",
    "tests/core/test_gru_sequence.py::test_outputs_and_gradients_equal_the_scanned_flax_cell_under_vmap",
    "tests/core/test_gru_sequence.py::test_the_loss_through_the_fused_gru_equals_the_per_step_scan",
    "tests/core/test_gru_sequence.py::test_torso_term_norms_from_one_pullback_equal_separate_gradients",
    "tests/core/test_shared_rnn.py::test_learning_reruns_reproduce_the_acting_pass",
    "tests/core/test_shared_rnn.py::test_one_cell_feeds_both_heads_and_restarts_at_episode_starts",
    "tests/core/test_shared_rnn.py::test_shared_cell_equals_per_network_cells_holding_the_same_weights",
    "tests/core/test_shared_rnn.py::test_shared_lstm_run_equals_solo_runs_resumes_bitwise_and_exports",
    "tests/core/test_stabilization_math.py::test_group_norms_match_numpy_norms_of_the_subtrees",
    "tests/core/test_stabilization_math.py::test_hl_gauss_targets_beyond_the_support_go_to_the_nearest_edge_bin",
    "tests/core/test_stabilization_math.py::test_per_head_clip_isolates_the_policy_step_from_a_huge_value_gradient",
    "tests/core/test_stabilization_math.py::test_running_stats_follow_the_numpy_merge_formula",
    "tests/core/test_stabilization_math.py::test_split_reshapes_runs_into_points_by_seeds",
    "tests/core/test_stabilization_math.py::test_sweep_accepts_numpy_scalars_for_every_field",
    "tests/core/test_stabilization_math.py::test_sweep_hparams_are_stacked_per_point",
    "tests/core/test_stabilization_math.py::test_sweep_over_lr_accepts_numpy_float32_like_the_group_learning_rates",
    "tests/core/test_stabilization_math.py::test_sweep_over_lr_moves_all_three_group_learning_rates",
    "tests/core/test_stabilization_math.py::test_sweep_rejects_empty_lists_unknown_fields_and_bad_values",
    "tests/core/test_stabilization_math.py::test_sweep_settings_are_the_cartesian_product_in_order",
    "tests/core/test_stabilization_math.py::test_sweeping_a_static_field_is_rejected_by_name",
    "tests/core/test_stabilization_math.py::test_tile_is_point_major_with_seeds_shared_across_points",
    "tests/core/test_stabilization_train.py::test_diagnostics_off_drops_exactly_the_diagnostic_metrics",
    "tests/core/test_stabilization_train.py::test_entropy_schedule_decays_from_ent_coef_to_ent_coef_final",
    "tests/core/test_stabilization_train.py::test_every_documented_metric_is_recorded_once_per_update",
    "tests/core/test_stabilization_train.py::test_group_gradient_norms_partition_the_global_norm",
    "tests/core/test_stabilization_train.py::test_kl_early_stop_ends_every_update_before_its_last_epoch",
    "tests/core/test_stabilization_train.py::test_kl_early_stop_freezes_params_after_the_stopping_step",
    "tests/core/test_stabilization_train.py::test_kl_early_stop_keeps_the_lr_schedule_on_the_planned_steps",
    "tests/core/test_stabilization_train.py::test_kl_early_stop_with_an_unreachable_target_equals_no_early_stop",
    "tests/core/test_stabilization_train.py::test_popart_critic_tracks_returns_where_the_raw_clipped_critic_is_frozen",
    "tests/core/test_stabilization_train.py::test_popart_sigma_grows_to_the_return_scale",
    "tests/core/test_stabilization_train.py::test_raw_targets_without_reward_scaling_report_a_unit_normalizer",
    "tests/core/test_stabilization_train.py::test_relative_value_clip_is_the_absolute_clip_scaled_by_the_target_std",
    "tests/core/test_stabilization_train.py::test_reward_scale_multiplies_the_target_scale_by_1000",
    "tests/core/test_stabilization_train.py::test_shared_torso_term_norms_show_value_dominance",
    "tests/core/test_stabilization_train.py::test_sweep_points_really_differ_and_split_by_point_and_seed",
    "tests/core/test_stabilization_train.py::test_torso_term_norms_are_taken_at_the_update_start_and_scale_with_vf_coef",
    "tests/core/test_stabilization_train.py::test_value_pretraining_changes_only_critic_parameters",
    "tests/core/test_stabilization_train.py::test_value_pretraining_fits_the_critic_at_the_default_lr",
    "tests/core/test_stabilization_train.py::test_value_pretraining_hands_ppo_a_fresh_optimizer",
    "tests/core/test_stabilization_train.py::test_value_pretraining_moves_the_critic_toward_cartpole_returns",
    "tests/core/test_stabilization_train.py::test_vmapped_sweep_equals_solo_runs_of_each_point",
    "tests/core/test_strategies.py::test_hl_gauss_loss_and_head_against_numpy",
    "tests/core/test_train.py::test_a_physics_env_caps_the_automatic_unroll_on_an_accelerator",
    "tests/core/test_train.py::test_bad_hparams_fail_before_compiling",
    "tests/core/test_train.py::test_cartpole_learns_on_a_small_budget",
    "tests/core/test_train.py::test_continuous_and_shared_torso_programs_run",
    "tests/core/test_train.py::test_hparam_batch_equals_solo_runs",
    "tests/core/test_train.py::test_metrics_are_one_scalar_per_update_per_seed",
    "tests/core/test_train.py::test_same_key_gives_same_result",
    "tests/core/test_train.py::test_unrolled_time_scans_give_the_same_run",
    "tests/core/test_train.py::test_vmapped_seed_equals_solo_seed",
    "tests/core/test_train_pieces.py::test_entropy_coefficient_follows_its_schedule_per_update",
    "tests/core/test_train_pieces.py::test_total_loss_is_policy_plus_value_minus_entropy",
    "tests/core/test_train_pieces.py::test_truncation_bootstraps_and_termination_does_not",
    "tests/core/test_train_pieces.py::test_value_loss_on_a_collected_batch_against_numpy",
    "tests/core/test_train_step_by_hand.py::test_actor_critic_equals_a_numpy_tanh_mlp",
    "tests/core/test_train_step_by_hand.py::test_advantage_std_is_logged_before_batch_normalization",
    "tests/core/test_train_step_by_hand.py::test_global_grad_norm_is_the_l2_norm_of_the_group_norms",
    "tests/core/test_train_step_by_hand.py::test_grad_clip_ratio_is_taken_on_the_norm_the_clip_acts_on",
    "tests/core/test_train_step_by_hand.py::test_grad_norms_match_an_independent_gradient",
    "tests/core/test_train_step_by_hand.py::test_learn_metrics_match_numpy_losses",
    "tests/core/test_train_step_by_hand.py::test_normalized_observations_are_what_acting_and_learning_both_see",
    "tests/core/test_train_step_by_hand.py::test_one_update_metrics_match_numpy_losses_on_its_batch",
    "tests/core/test_train_step_by_hand.py::test_popart_statistics_follow_the_popart_step_hyperparameter",
    "tests/core/test_train_step_by_hand.py::test_popart_steps_give_different_statistics",
    "tests/core/test_train_step_by_hand.py::test_total_loss_is_policy_loss_plus_value_loss_minus_entropy_bonus",
    "tests/core/test_train_step_by_hand.py::test_truncated_steps_bootstrap_from_the_final_observation",
    "tests/docs/test_docs_examples.py::test_generated_reference_pages_are_current",
    "tests/docs/test_docs_examples.py::test_runnable_examples_run",
    "tests/docs/test_examples.py::test_corridor_rewards_and_episode_ends_by_hand",
    "tests/docs/test_examples.py::test_load_and_evaluate_a_policy",
    "tests/docs/test_examples.py::test_sweep_notebook_executes",
    "tests/docs/test_examples.py::test_your_own_environment_trains",
    "tests/docs/test_notebook.py::test_quickstart_notebook_executes",
    "tests/envs/test_brax.py::test_a_tiny_run_trains_and_counts_truncations",
    "tests/envs/test_brax.py::test_names_and_params_are_checked",
    "tests/envs/test_brax.py::test_spaces_and_spec",
    "tests/envs/test_brax.py::test_steps_match_a_hand_stepped_brax_episode",
    "tests/envs/test_custom_env.py::test_a_wrong_env_fails_before_compiling_from_the_cli",
    "tests/envs/test_custom_env.py::test_a_wrong_env_fails_in_one_line_before_a_run_directory",
    "tests/envs/test_custom_env.py::test_bare_env_trains_and_counts_terminations_and_truncations",
    "tests/envs/test_custom_env.py::test_cli_train_with_import_path_and_env_params",
    "tests/envs/test_custom_env.py::test_delivery_chain_rewards_sum_their_components",
    "tests/envs/test_custom_env.py::test_make_train_rejects_the_old_api_before_tracing_the_program",
    "tests/envs/test_custom_env.py::test_run_with_an_object_names_it_and_resumes_bitwise",
    "tests/envs/test_custom_env.py::test_standard_ppo_learns_the_delivery_chain",
    "tests/envs/test_custom_env.py::test_toml_import_path_equals_the_object_and_resumes_from_the_cli",
    "tests/envs/test_make_and_wrappers.py::test_episode_statistics_match_hand_loop",
    "tests/envs/test_make_and_wrappers.py::test_episode_statistics_vmapped_over_envs",
    "tests/envs/test_make_and_wrappers.py::test_final_observation_flattened_and_differs_only_at_done",
    "tests/envs/test_make_and_wrappers.py::test_make_every_env",
    "tests/envs/test_make_and_wrappers.py::test_params_default_to_env_defaults",
    "tests/envs/test_make_and_wrappers.py::test_reset_episode_totals_keeps_running_episode",
    "tests/envs/test_make_and_wrappers.py::test_reward_scale_multiplies_rewards_and_returns",
    "tests/envs/test_no_reset.py::test_evaluation_without_auto_reset_gives_the_same_episodes",
    "tests/envs/test_playground.py::test_a_tiny_seed_vmapped_run_trains_and_counts_truncations",
    "tests/envs/test_playground.py::test_names_and_params_are_checked",
    "tests/envs/test_playground.py::test_reset_after_done_starts_a_fresh_episode",
    "tests/envs/test_playground.py::test_spaces_and_spec",
    "tests/envs/test_playground.py::test_steps_match_a_hand_stepped_playground_episode",
    "tests/experiments/test_case_studies.py::test_case_smoke_run_is_finite_and_diagnosed",
    "tests/experiments/test_case_studies.py::test_copy_outputs_copies_every_output_and_leaves_the_readme",
    "tests/experiments/test_case_studies.py::test_refresh_rewrites_outputs_from_the_run_dir",
    "tests/experiments/test_case_studies.py::test_train_replaces_a_run_or_resumes_it",
    "tests/experiments/test_case_study_envs.py::test_ranking_reward_is_the_reciprocal_rank_of_the_pick_it_saw",
    "tests/experiments/test_case_study_envs.py::test_reach_distractors_carry_no_information",
    "tests/experiments/test_case_study_envs.py::test_reach_random_gaussian_policy_earns_the_stated_per_step_reward",
    "tests/experiments/test_case_study_envs.py::test_reach_reward_is_the_sum_of_its_hand_computed_parts",
    "tests/experiments/test_diagnosis_benchmark.py::test_committed_external_results_are_scored_from_their_labels",
    "tests/experiments/test_published.py::test_an_existing_run_needs_resume_or_fresh",
    "tests/experiments/test_published.py::test_experiment_file_holds_the_publishers_settings",
    "tests/experiments/test_published.py::test_merge_adds_another_machines_rows",
    "tests/experiments/test_published.py::test_minatar_files_differ_only_in_the_environment",
    "tests/experiments/test_published.py::test_runner_trains_every_row_a_few_updates",
    "tests/runs/test_checks_before_compiling.py::test_a_dict_instead_of_a_config_is_one_line_naming_the_function",
    "tests/runs/test_checks_before_compiling.py::test_a_large_plan_says_its_size_in_one_line_before_anything_compiles",
    "tests/runs/test_checks_before_compiling.py::test_a_loaded_policy_names_a_wrong_carry_or_observation_in_one_line",
    "tests/runs/test_checks_before_compiling.py::test_a_name_that_is_a_path_is_refused_before_anything_is_written",
    "tests/runs/test_checks_before_compiling.py::test_a_program_of_many_variants_is_named_by_its_first_ones_and_a_count",
    "tests/runs/test_checks_before_compiling.py::test_a_registered_value_loss_that_returns_nan_is_named_not_the_learning_rate",
    "tests/runs/test_checks_before_compiling.py::test_a_run_that_failed_before_its_first_chunk_does_not_block_the_retry",
    "tests/runs/test_checks_before_compiling.py::test_a_strategy_failing_at_trace_time_names_itself_and_its_contract",
    "tests/runs/test_checks_before_compiling.py::test_a_wrong_keyword_to_run_names_run_and_its_own_argument",
    "tests/runs/test_checks_before_compiling.py::test_an_evaluation_of_zero_episodes_is_refused_not_the_default",
    "tests/runs/test_checks_before_compiling.py::test_an_observation_space_that_disagrees_with_the_observations_is_one_line_first",
    "tests/runs/test_checks_before_compiling.py::test_nan_returns_are_never_summarised_as_numbers",
    "tests/runs/test_checks_before_compiling.py::test_plots_of_many_variants_count_them_instead_of_a_legend_and_few_keep_it",
    "tests/runs/test_checks_before_compiling.py::test_the_notes_reach_the_cli_and_python_before_anything_compiles",
    "tests/runs/test_divergence.py::test_a_program_whose_runs_all_diverged_stops_early_and_stays_stopped",
    "tests/runs/test_divergence.py::test_a_resumed_run_knows_the_divergences_on_disk",
    "tests/runs/test_divergence.py::test_diagnose_names_divergence_its_first_update_and_the_reward",
    "tests/runs/test_divergence.py::test_nan_reward_flags_the_known_update_and_its_source",
    "tests/runs/test_divergence.py::test_progress_names_diverged_seeds_as_they_happen",
    "tests/runs/test_divergence.py::test_summary_marks_diverged_runs_with_and_without_them",
    "tests/runs/test_divergence.py::test_the_check_has_an_off_switch_that_removes_its_metrics",
    "tests/runs/test_faults.py::test_a_damaged_checkpoint_is_skipped_for_the_newest_readable_one",
    "tests/runs/test_faults.py::test_ctrl_c_saves_the_chunk_then_names_the_resume_command",
    "tests/runs/test_faults.py::test_disk_full_names_path_and_reason_and_keeps_finished_chunks",
    "tests/runs/test_faults.py::test_incomplete_runs_are_labelled_in_summary_and_diagnosis",
    "tests/runs/test_faults.py::test_jppo_resume_finishes_bitwise_equal_to_an_uninterrupted_run",
    "tests/runs/test_faults.py::test_resume_mismatch_names_each_field_with_both_values",
    "tests/runs/test_faults.py::test_resume_removes_stale_temporaries_only",
    "tests/runs/test_faults.py::test_run_files_get_the_umask_mode",
    "tests/runs/test_faults.py::test_unwritable_out_fails_in_one_line_before_compiling",
    "tests/runs/test_input_validation.py::test_a_knob_for_another_action_space_is_rejected",
    "tests/runs/test_input_validation.py::test_a_rounded_total_is_reported",
    "tests/runs/test_input_validation.py::test_env_params_are_checked_before_the_run_directory",
    "tests/runs/test_input_validation.py::test_malformed_or_empty_variants_are_errors",
    "tests/runs/test_input_validation.py::test_the_manual_sweep_recipe_validates_before_jit",
    "tests/runs/test_multihost.py::test_a_process_whose_peers_never_come_says_so_once_then_ends_in_one_line",
    "tests/runs/test_multihost.py::test_cli_process_flags_need_a_coordinator_and_a_run_directory",
    "tests/runs/test_multihost.py::test_train_and_resume_with_the_process_flags",
    "tests/runs/test_multihost.py::test_two_processes_equal_one_and_resume",
    "tests/runs/test_runner.py::test_every_variant_equals_its_own_solo_run",
    "tests/runs/test_runner.py::test_resume_after_a_stop_is_bitwise_identical",
    "tests/runs/test_runner.py::test_resume_after_sigkill_is_bitwise_identical",
    "tests/runs/test_runner.py::test_run_directory_streams_metrics_and_refuses_to_overwrite",
    "tests/runs/test_runner.py::test_seeds_sharded_over_two_devices_equal_one_device_and_resume_on_one",
    "tests/runs/test_runner.py::test_single_config_run_helper",
    "tests/runs/test_sweeps.py::test_jppo_sweep_keeps_rejecting_static_fields",
    "tests/runs/test_tensorboard.py::test_event_files_hold_the_median_and_iqr_across_seeds",
    "tests/runs/test_tensorboard.py::test_tensorboard_needs_a_run_directory_and_the_flag_sets_it",
    "tests/core/test_network_variants.py::test_a_recurrent_quantile_critic_trains_one_update",
    "tests/experiments/test_modern_variants.py",
)


# ------------------------------------------------------------------ the longest files first
# `make test` hands whole files to the workers (`--dist loadfile`, so a file's
# module fixtures are built once) in collection order (`--no-loadscope-reorder`).
# Starting the longest files first keeps one of them from starting last and
# leaving the other core idle at the end (longest-processing-time-first).
# Longest first, as measured with `--durations=0`; the rest follow in their usual
# order. tests/architecture/test_test_layout.py checks that each entry exists.
LONGEST_FIRST: tuple[str, ...] = (
    "tests/docs/test_docs_examples.py",
    "tests/experiments/test_published.py",
    "tests/core/test_stabilization_train.py",
    "tests/core/test_evaluation.py",
    "tests/core/test_networks.py",
    "tests/runs/test_checks_before_compiling.py",
    "tests/runs/test_runner.py",
    "tests/experiments/test_case_studies.py",
    "tests/runs/test_multihost.py",
    "tests/envs/test_custom_env.py",
    "tests/cli/test_cli.py",
    "tests/core/test_train.py",
    "tests/core/test_shared_rnn.py",
    "tests/envs/test_brax.py",
    "tests/envs/test_playground.py",
    "tests/core/test_recurrent.py",
    "tests/core/test_train_step_by_hand.py",
    "tests/bench/test_reference_and_profile.py",
    "tests/docs/test_examples.py",
    "tests/analysis/test_diagnose.py",
    "tests/envs/test_make_and_wrappers.py",
    "tests/docs/test_notebook.py",
)


def file_rank(nodeid: str) -> int:
    """Where a test's file runs: its place in LONGEST_FIRST, or after all of them."""
    path = nodeid.partition("::")[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items) -> None:
    import pytest

    items.sort(key=lambda item: file_rank(item.nodeid))  # stable: a file keeps its order
    for item in items:
        path, _, name = item.nodeid.partition("::")
        if path in SLOW or f"{path}::{name.partition('[')[0]}" in SLOW:
            item.add_marker(pytest.mark.slow)
