"""Importers: other trainers' logs (TRL, verl, OpenRLHF, plain jsonl/parquet) into `history` rows."""
