"""Problem data: loaders for benchmark files and generic JSONL/Parquet/HF datasets, prompt
templates, prompt sources. Nothing heavy is imported here (pyarrow/datasets load lazily)."""
