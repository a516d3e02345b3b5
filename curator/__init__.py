"""curator: data-centric curation and diagnostics for RL with verifiable rewards.

The library is the product; `curator.cli` is a thin layer over it. Nothing here
imports torch at module level: only the commands that run a model do.
"""

__version__ = "0.1.0"
