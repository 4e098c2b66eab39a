"""Reading finished runs: metric reductions, statistics across seeds, plots and the diagnosis."""
