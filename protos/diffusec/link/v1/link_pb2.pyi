from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncRequest(_message.Message):
    __slots__ = ("session", "sequence", "pilot", "preset", "mac")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PILOT_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    session: str
    sequence: int
    pilot: bytes
    preset: str
    mac: bytes
    def __init__(self, session: _Optional[str] = ..., sequence: _Optional[int] = ..., pilot: _Optional[bytes] = ..., preset: _Optional[str] = ..., mac: _Optional[bytes] = ...) -> None: ...

class SyncReply(_message.Message):
    __slots__ = ("epoch", "t_d", "t_plus", "snr_db", "policy", "preset", "latent_length", "num_timesteps", "timing", "mac", "frame_pilot_symbols", "frame_pilot_blocks")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    T_D_FIELD_NUMBER: _ClassVar[int]
    T_PLUS_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    LATENT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    NUM_TIMESTEPS_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    FRAME_PILOT_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    FRAME_PILOT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    t_d: int
    t_plus: int
    snr_db: float
    policy: str
    preset: str
    latent_length: int
    num_timesteps: int
    timing: SyncTiming
    mac: bytes
    frame_pilot_symbols: int
    frame_pilot_blocks: int
    def __init__(self, epoch: _Optional[int] = ..., t_d: _Optional[int] = ..., t_plus: _Optional[int] = ..., snr_db: _Optional[float] = ..., policy: _Optional[str] = ..., preset: _Optional[str] = ..., latent_length: _Optional[int] = ..., num_timesteps: _Optional[int] = ..., timing: _Optional[_Union[SyncTiming, _Mapping]] = ..., mac: _Optional[bytes] = ..., frame_pilot_symbols: _Optional[int] = ..., frame_pilot_blocks: _Optional[int] = ...) -> None: ...

class SyncTiming(_message.Message):
    __slots__ = ("receiver_us", "snr_estimate_us", "policy_us", "proxy_us")
    RECEIVER_US_FIELD_NUMBER: _ClassVar[int]
    SNR_ESTIMATE_US_FIELD_NUMBER: _ClassVar[int]
    POLICY_US_FIELD_NUMBER: _ClassVar[int]
    PROXY_US_FIELD_NUMBER: _ClassVar[int]
    receiver_us: float
    snr_estimate_us: float
    policy_us: float
    proxy_us: float
    def __init__(self, receiver_us: _Optional[float] = ..., snr_estimate_us: _Optional[float] = ..., policy_us: _Optional[float] = ..., proxy_us: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("frame_id", "session", "epoch", "t_d", "latent", "shape", "dtype", "label", "return_image", "mac", "pilot", "pilot_blocks")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    T_D_FIELD_NUMBER: _ClassVar[int]
    LATENT_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RETURN_IMAGE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    PILOT_FIELD_NUMBER: _ClassVar[int]
    PILOT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    session: str
    epoch: int
    t_d: int
    latent: bytes
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    label: int
    return_image: bool
    mac: bytes
    pilot: bytes
    pilot_blocks: int
    def __init__(self, frame_id: _Optional[int] = ..., session: _Optional[str] = ..., epoch: _Optional[int] = ..., t_d: _Optional[int] = ..., latent: _Optional[bytes] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., label: _Optional[int] = ..., return_image: _Optional[bool] = ..., mac: _Optional[bytes] = ..., pilot: _Optional[bytes] = ..., pilot_blocks: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("frame_id", "predicted_class", "t_p", "epoch", "t_d", "image", "image_shape", "duplicate", "mac", "error")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CLASS_FIELD_NUMBER: _ClassVar[int]
    T_P_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    T_D_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHAPE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    predicted_class: int
    t_p: int
    epoch: int
    t_d: int
    image: bytes
    image_shape: _containers.RepeatedScalarFieldContainer[int]
    duplicate: bool
    mac: bytes
    error: FrameError
    def __init__(self, frame_id: _Optional[int] = ..., predicted_class: _Optional[int] = ..., t_p: _Optional[int] = ..., epoch: _Optional[int] = ..., t_d: _Optional[int] = ..., image: _Optional[bytes] = ..., image_shape: _Optional[_Iterable[int]] = ..., duplicate: _Optional[bool] = ..., mac: _Optional[bytes] = ..., error: _Optional[_Union[FrameError, _Mapping]] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "reason", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    message: str
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Jamming(_message.Message):
    __slots__ = ("pnr_db",)
    PNR_DB_FIELD_NUMBER: _ClassVar[int]
    pnr_db: float
    def __init__(self, pnr_db: _Optional[float] = ...) -> None: ...

class Drop(_message.Message):
    __slots__ = ("rate",)
    RATE_FIELD_NUMBER: _ClassVar[int]
    rate: float
    def __init__(self, rate: _Optional[float] = ...) -> None: ...

class Delay(_message.Message):
    __slots__ = ("ms", "jitter_ms")
    MS_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    ms: float
    jitter_ms: float
    def __init__(self, ms: _Optional[float] = ..., jitter_ms: _Optional[float] = ...) -> None: ...

class Adversarial(_message.Message):
    __slots__ = ("pnr_db", "method", "steps", "target", "surrogate")
    PNR_DB_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SURROGATE_FIELD_NUMBER: _ClassVar[int]
    pnr_db: float
    method: str
    steps: int
    target: int
    surrogate: str
    def __init__(self, pnr_db: _Optional[float] = ..., method: _Optional[str] = ..., steps: _Optional[int] = ..., target: _Optional[int] = ..., surrogate: _Optional[str] = ...) -> None: ...

class SyncTamper(_message.Message):
    __slots__ = ("t_d", "t_plus", "rate")
    T_D_FIELD_NUMBER: _ClassVar[int]
    T_PLUS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    t_d: int
    t_plus: int
    rate: float
    def __init__(self, t_d: _Optional[int] = ..., t_plus: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class FrameTamper(_message.Message):
    __slots__ = ("t_d", "rate")
    T_D_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    t_d: int
    rate: float
    def __init__(self, t_d: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class AckForge(_message.Message):
    __slots__ = ("target", "rate")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    target: int
    rate: float
    def __init__(self, target: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class Rayleigh(_message.Message):
    __slots__ = ("block",)
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    block: int
    def __init__(self, block: _Optional[int] = ...) -> None: ...

class Rician(_message.Message):
    __slots__ = ("k_db", "block")
    K_DB_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    k_db: float
    block: int
    def __init__(self, k_db: _Optional[float] = ..., block: _Optional[int] = ...) -> None: ...

class Impairment(_message.Message):
    __slots__ = ("name", "jamming", "drop", "delay", "adversarial", "sync_tamper", "frame_tamper", "ack_forge", "rayleigh", "rician")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JAMMING_FIELD_NUMBER: _ClassVar[int]
    DROP_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    ADVERSARIAL_FIELD_NUMBER: _ClassVar[int]
    SYNC_TAMPER_FIELD_NUMBER: _ClassVar[int]
    FRAME_TAMPER_FIELD_NUMBER: _ClassVar[int]
    ACK_FORGE_FIELD_NUMBER: _ClassVar[int]
    RAYLEIGH_FIELD_NUMBER: _ClassVar[int]
    RICIAN_FIELD_NUMBER: _ClassVar[int]
    name: str
    jamming: Jamming
    drop: Drop
    delay: Delay
    adversarial: Adversarial
    sync_tamper: SyncTamper
    frame_tamper: FrameTamper
    ack_forge: AckForge
    rayleigh: Rayleigh
    rician: Rician
    def __init__(self, name: _Optional[str] = ..., jamming: _Optional[_Union[Jamming, _Mapping]] = ..., drop: _Optional[_Union[Drop, _Mapping]] = ..., delay: _Optional[_Union[Delay, _Mapping]] = ..., adversarial: _Optional[_Union[Adversarial, _Mapping]] = ..., sync_tamper: _Optional[_Union[SyncTamper, _Mapping]] = ..., frame_tamper: _Optional[_Union[FrameTamper, _Mapping]] = ..., ack_forge: _Optional[_Union[AckForge, _Mapping]] = ..., rayleigh: _Optional[_Union[Rayleigh, _Mapping]] = ..., rician: _Optional[_Union[Rician, _Mapping]] = ...) -> None: ...

class ListImpairmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListImpairmentsReply(_message.Message):
    __slots__ = ("impairments",)
    IMPAIRMENTS_FIELD_NUMBER: _ClassVar[int]
    impairments: _containers.RepeatedCompositeFieldContainer[Impairment]
    def __init__(self, impairments: _Optional[_Iterable[_Union[Impairment, _Mapping]]] = ...) -> None: ...

class AddImpairmentRequest(_message.Message):
    __slots__ = ("impairment",)
    IMPAIRMENT_FIELD_NUMBER: _ClassVar[int]
    impairment: Impairment
    def __init__(self, impairment: _Optional[_Union[Impairment, _Mapping]] = ...) -> None: ...

class RemoveImpairmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveImpairmentReply(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: Impairment
    def __init__(self, removed: _Optional[_Union[Impairment, _Mapping]] = ...) -> None: ...

class ClearImpairmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClearImpairmentsReply(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class SetSnrRequest(_message.Message):
    __slots__ = ("snr_db",)
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    snr_db: float
    def __init__(self, snr_db: _Optional[float] = ...) -> None: ...

class SnrPoint(_message.Message):
    __slots__ = ("at_s", "snr_db")
    AT_S_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    at_s: float
    snr_db: float
    def __init__(self, at_s: _Optional[float] = ..., snr_db: _Optional[float] = ...) -> None: ...

class ScheduleSnrRequest(_message.Message):
    __slots__ = ("points", "period_s")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[SnrPoint]
    period_s: float
    def __init__(self, points: _Optional[_Iterable[_Union[SnrPoint, _Mapping]]] = ..., period_s: _Optional[float] = ...) -> None: ...

class FadingPoint(_message.Message):
    __slots__ = ("at_s", "fading")
    AT_S_FIELD_NUMBER: _ClassVar[int]
    FADING_FIELD_NUMBER: _ClassVar[int]
    at_s: float
    fading: Impairment
    def __init__(self, at_s: _Optional[float] = ..., fading: _Optional[_Union[Impairment, _Mapping]] = ...) -> None: ...

class ScheduleFadingRequest(_message.Message):
    __slots__ = ("points", "period_s")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[FadingPoint]
    period_s: float
    def __init__(self, points: _Optional[_Iterable[_Union[FadingPoint, _Mapping]]] = ..., period_s: _Optional[float] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("frames_in", "frames_forwarded", "frames_dropped", "frames_jammed", "syncs_forwarded", "acks_returned", "snr_db", "effective_snr_db", "snr_scheduled", "impairments", "uptime_s", "upstream", "frames_attacked", "attack_pnr_db", "syncs_tampered", "frames_tampered", "acks_forged", "channel", "frames_faded", "channel_scheduled")
    FRAMES_IN_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FORWARDED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_JAMMED_FIELD_NUMBER: _ClassVar[int]
    SYNCS_FORWARDED_FIELD_NUMBER: _ClassVar[int]
    ACKS_RETURNED_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SNR_SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    IMPAIRMENTS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    FRAMES_ATTACKED_FIELD_NUMBER: _ClassVar[int]
    ATTACK_PNR_DB_FIELD_NUMBER: _ClassVar[int]
    SYNCS_TAMPERED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TAMPERED_FIELD_NUMBER: _ClassVar[int]
    ACKS_FORGED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FADED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    frames_in: int
    frames_forwarded: int
    frames_dropped: int
    frames_jammed: int
    syncs_forwarded: int
    acks_returned: int
    snr_db: float
    effective_snr_db: float
    snr_scheduled: bool
    impairments: int
    uptime_s: float
    upstream: str
    frames_attacked: int
    attack_pnr_db: float
    syncs_tampered: int
    frames_tampered: int
    acks_forged: int
    channel: str
    frames_faded: int
    channel_scheduled: bool
    def __init__(self, frames_in: _Optional[int] = ..., frames_forwarded: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., frames_jammed: _Optional[int] = ..., syncs_forwarded: _Optional[int] = ..., acks_returned: _Optional[int] = ..., snr_db: _Optional[float] = ..., effective_snr_db: _Optional[float] = ..., snr_scheduled: _Optional[bool] = ..., impairments: _Optional[int] = ..., uptime_s: _Optional[float] = ..., upstream: _Optional[str] = ..., frames_attacked: _Optional[int] = ..., attack_pnr_db: _Optional[float] = ..., syncs_tampered: _Optional[int] = ..., frames_tampered: _Optional[int] = ..., acks_forged: _Optional[int] = ..., channel: _Optional[str] = ..., frames_faded: _Optional[int] = ..., channel_scheduled: _Optional[bool] = ...) -> None: ...
