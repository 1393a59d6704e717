"""The typed run configuration, its loaders, overrides and presets (L0: imports only acetune.errors)."""

from acetune.config.schema import (
    CONFIG_VERSION,
    AdapterConfig,
    AdapterKind,
    AttentionTargets,
    BestMetric,
    DataConfig,
    LogConfig,
    LoopConfig,
    LossWeighting,
    ObjectiveConfig,
    OptimConfig,
    OptimizerKind,
    Precision,
    RunConfig,
    SaveConfig,
    ScheduleConfig,
    SchedulerKind,
    TimestepMode,
)

__all__ = [
    "CONFIG_VERSION", "AdapterConfig", "AdapterKind", "AttentionTargets", "BestMetric", "DataConfig", "LogConfig",
    "LoopConfig", "LossWeighting", "ObjectiveConfig", "OptimConfig", "OptimizerKind", "Precision", "RunConfig",
    "SaveConfig", "ScheduleConfig", "SchedulerKind", "TimestepMode",
]
