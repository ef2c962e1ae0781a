"""fastbp's speed benchmark: fastbp against NumPy, scikit-learn, PyTorch and JAX in one run.

Run ``python -m bench --help``; see bench/README.md for the method and the latest results.
"""
