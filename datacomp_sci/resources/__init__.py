"""Declarative files shipped with the package: pools, SQL filters, evaluation suites,
experiments, OpenCLIP model configs and the bundled sample corpus."""
