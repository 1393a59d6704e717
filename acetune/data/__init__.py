"""Datasets: folder scan, labels, prompts, the latent cache and preprocessing.

Public entry points (import them from their modules):
- `dataset.scan_dataset`, `dataset_json.read_dataset_json` / `write_dataset_json` / `import_dataset_json`
- `folder_jobs.split_dataset`, `folder_jobs.analyze_dataset`
- `prompts.build_caption_prompt` / `build_lyric_text` / `build_metas` (shared with inference)
- `preprocess.preprocess`, `preprocess.PreprocessConfig`
- `cache.CacheReader`, `fingerprint.require_match`, `validate.validate_cache`
"""
