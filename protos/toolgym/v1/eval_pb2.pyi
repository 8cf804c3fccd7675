from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvalOptions(_message.Message):
    __slots__ = ("strict", "skip_bleu", "include_items", "name")
    STRICT_FIELD_NUMBER: _ClassVar[int]
    SKIP_BLEU_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    strict: bool
    skip_bleu: bool
    include_items: bool
    name: str
    def __init__(self, strict: _Optional[bool] = ..., skip_bleu: _Optional[bool] = ..., include_items: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class KAgentRecord(_message.Message):
    __slots__ = ("item_json", "model_predict_json", "has_prediction")
    ITEM_JSON_FIELD_NUMBER: _ClassVar[int]
    MODEL_PREDICT_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    item_json: str
    model_predict_json: str
    has_prediction: bool
    def __init__(self, item_json: _Optional[str] = ..., model_predict_json: _Optional[str] = ..., has_prediction: _Optional[bool] = ...) -> None: ...

class AbilityScores(_message.Message):
    __slots__ = ("planning", "tool_use", "reflection", "concluding", "profile", "overall", "bleu_concluding", "bleu_profile")
    PLANNING_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    REFLECTION_FIELD_NUMBER: _ClassVar[int]
    CONCLUDING_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    BLEU_CONCLUDING_FIELD_NUMBER: _ClassVar[int]
    BLEU_PROFILE_FIELD_NUMBER: _ClassVar[int]
    planning: float
    tool_use: float
    reflection: float
    concluding: float
    profile: float
    overall: float
    bleu_concluding: float
    bleu_profile: float
    def __init__(self, planning: _Optional[float] = ..., tool_use: _Optional[float] = ..., reflection: _Optional[float] = ..., concluding: _Optional[float] = ..., profile: _Optional[float] = ..., overall: _Optional[float] = ..., bleu_concluding: _Optional[float] = ..., bleu_profile: _Optional[float] = ...) -> None: ...

class KAgentResult(_message.Message):
    __slots__ = ("scores", "counts", "strict", "tokenizer", "report_json")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SCORES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    scores: AbilityScores
    counts: _containers.ScalarMap[str, int]
    strict: bool
    tokenizer: str
    report_json: str
    def __init__(self, scores: _Optional[_Union[AbilityScores, _Mapping]] = ..., counts: _Optional[_Mapping[str, int]] = ..., strict: _Optional[bool] = ..., tokenizer: _Optional[str] = ..., report_json: _Optional[str] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("options", "records")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    options: EvalOptions
    records: _containers.RepeatedCompositeFieldContainer[KAgentRecord]
    def __init__(self, options: _Optional[_Union[EvalOptions, _Mapping]] = ..., records: _Optional[_Iterable[_Union[KAgentRecord, _Mapping]]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: KAgentResult
    def __init__(self, result: _Optional[_Union[KAgentResult, _Mapping]] = ...) -> None: ...

class EvaluateStreamRequest(_message.Message):
    __slots__ = ("options", "record")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    options: EvalOptions
    record: KAgentRecord
    def __init__(self, options: _Optional[_Union[EvalOptions, _Mapping]] = ..., record: _Optional[_Union[KAgentRecord, _Mapping]] = ...) -> None: ...

class EvaluateStreamResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: KAgentResult
    def __init__(self, result: _Optional[_Union[KAgentResult, _Mapping]] = ...) -> None: ...

class ItemScore(_message.Message):
    __slots__ = ("id", "type", "scores", "issues")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    scores: _containers.ScalarMap[str, float]
    issues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., scores: _Optional[_Mapping[str, float]] = ..., issues: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoreItemsRequest(_message.Message):
    __slots__ = ("options", "record")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    options: EvalOptions
    record: KAgentRecord
    def __init__(self, options: _Optional[_Union[EvalOptions, _Mapping]] = ..., record: _Optional[_Union[KAgentRecord, _Mapping]] = ...) -> None: ...

class ScoreItemsResponse(_message.Message):
    __slots__ = ("item", "result")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    item: ItemScore
    result: KAgentResult
    def __init__(self, item: _Optional[_Union[ItemScore, _Mapping]] = ..., result: _Optional[_Union[KAgentResult, _Mapping]] = ...) -> None: ...
