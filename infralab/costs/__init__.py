"""Pricing and bills: published prices (datasets/pricing), serverless billing, option costs, break-even.

Import from the submodules (``infralab.costs.serverless``, ``infralab.costs.model``, ...).
"""
