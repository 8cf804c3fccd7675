from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RewardConfig(_message.Message):
    __slots__ = ("weights", "penalties", "penalty_per_occurrence", "max_penalty_total")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class PenaltiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    PENALTIES_FIELD_NUMBER: _ClassVar[int]
    PENALTY_PER_OCCURRENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_PENALTY_TOTAL_FIELD_NUMBER: _ClassVar[int]
    weights: _containers.ScalarMap[str, float]
    penalties: _containers.ScalarMap[str, float]
    penalty_per_occurrence: bool
    max_penalty_total: float
    def __init__(self, weights: _Optional[_Mapping[str, float]] = ..., penalties: _Optional[_Mapping[str, float]] = ..., penalty_per_occurrence: _Optional[bool] = ..., max_penalty_total: _Optional[float] = ...) -> None: ...

class ScoreResult(_message.Message):
    __slots__ = ("total", "components", "penalties", "valid", "feedback", "details_json")
    class ComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class PenaltiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    PENALTIES_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    total: float
    components: _containers.ScalarMap[str, float]
    penalties: _containers.ScalarMap[str, float]
    valid: bool
    feedback: str
    details_json: str
    def __init__(self, total: _Optional[float] = ..., components: _Optional[_Mapping[str, float]] = ..., penalties: _Optional[_Mapping[str, float]] = ..., valid: _Optional[bool] = ..., feedback: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("task_id", "task_json", "output", "template", "reward_config", "request_id", "retrieval")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REWARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_json: str
    output: str
    template: str
    reward_config: RewardConfig
    request_id: str
    retrieval: RetrievalOptions
    def __init__(self, task_id: _Optional[str] = ..., task_json: _Optional[str] = ..., output: _Optional[str] = ..., template: _Optional[str] = ..., reward_config: _Optional[_Union[RewardConfig, _Mapping]] = ..., request_id: _Optional[str] = ..., retrieval: _Optional[_Union[RetrievalOptions, _Mapping]] = ...) -> None: ...

class RetrievalOptions(_message.Message):
    __slots__ = ("tool_pool", "mode", "retriever", "k")
    TOOL_POOL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RETRIEVER_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    tool_pool: str
    mode: str
    retriever: str
    k: int
    def __init__(self, tool_pool: _Optional[str] = ..., mode: _Optional[str] = ..., retriever: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("result", "request_id", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: ScoreResult
    request_id: str
    error: ItemError
    def __init__(self, result: _Optional[_Union[ScoreResult, _Mapping]] = ..., request_id: _Optional[str] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ScoreBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreRequest, _Mapping]]] = ...) -> None: ...

class ScoreBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoreResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[ScoreResponse, _Mapping]]] = ...) -> None: ...
