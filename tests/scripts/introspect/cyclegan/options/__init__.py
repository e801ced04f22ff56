"""This package includes option modules: training options, test options, and basic options."""
