"""The typed run configuration, its loaders, overrides and presets (L0: imports only acetune.errors)."""

from acetune.config.files import dumps_toml, load_config_file
from acetune.config.loader import (
    apply_overrides,
    checked_preprocess,
    config_deltas,
    config_diff,
    config_from_dict,
    config_layer,
    config_to_dict,
    merge_dicts,
    resolve_config,
    write_config,
)
from acetune.config.migrations import MIGRATIONS, migrate
from acetune.config.presets import (
    BUILTIN_PRESETS,
    adapt_preset,
    auto_preset,
    default_presets_dir,
    detect_device_memory_gib,
    load_preset_data,
    preset_for_adapter,
)
from acetune.config.schema import (
    ADAPTER_BACKENDS,
    CONFIG_VERSION,
    AdapterBackend,
    AdapterConfig,
    AdapterKind,
    AttentionTargets,
    AuditionConfig,
    BestMetric,
    DataConfig,
    LogConfig,
    LatentMode,
    LoopConfig,
    LossWeighting,
    Normalization,
    ObjectiveConfig,
    OptimConfig,
    OptimizerKind,
    Precision,
    PreprocessConfig,
    RunConfig,
    SaveConfig,
    SaveDtype,
    ScheduleConfig,
    SchedulerKind,
    Task,
    TaskMix,
    TimbreReference,
    TimestepMode,
)
from acetune.config.user_presets import PresetInfo, export_preset, import_preset, list_presets, preset_text, save_preset
from acetune.config.validation import validate

__all__ = [
    "ADAPTER_BACKENDS", "CONFIG_VERSION", "AdapterBackend", "AdapterConfig", "AdapterKind", "AttentionTargets", "AuditionConfig", "BestMetric", "DataConfig",
    "LatentMode", "LogConfig", "LoopConfig", "LossWeighting", "Normalization", "ObjectiveConfig", "OptimConfig",
    "OptimizerKind", "Precision", "PreprocessConfig", "RunConfig", "SaveConfig", "SaveDtype", "ScheduleConfig",
    "SchedulerKind", "Task", "TaskMix", "TimbreReference", "TimestepMode",
    # loading, overrides, writing
    "MIGRATIONS", "apply_overrides", "checked_preprocess", "config_deltas", "config_diff", "config_from_dict", "config_layer",
    "config_to_dict", "dumps_toml", "load_config_file", "merge_dicts", "migrate", "resolve_config", "validate",
    "write_config",
    # presets
    "BUILTIN_PRESETS", "PresetInfo", "adapt_preset", "auto_preset", "default_presets_dir", "detect_device_memory_gib",
    "export_preset", "import_preset", "list_presets", "load_preset_data", "preset_for_adapter", "preset_text",
    "save_preset",
]
