"""Hooks that run inside other trainers; none imports its trainer at module import.

    verl_sampler.py      a `data.sampler` class for verl that yields dataset rows in a curator export's order
    openrlhf_reward.py   a `--remote_rm_url file.py` reward function for OpenRLHF that logs every outcome
"""
