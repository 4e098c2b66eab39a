"""Experiment scripts, their committed results, and an example custom environment
(`experiments.custom_env`). A package so `--env experiments.custom_env:make_env`
imports from the repository root."""
