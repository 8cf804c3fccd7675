from toolgym.v1 import reward_pb2 as _reward_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskInfo(_message.Message):
    __slots__ = ("id", "category", "kind", "num_turns", "num_tools")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NUM_TURNS_FIELD_NUMBER: _ClassVar[int]
    NUM_TOOLS_FIELD_NUMBER: _ClassVar[int]
    id: str
    category: str
    kind: str
    num_turns: int
    num_tools: int
    def __init__(self, id: _Optional[str] = ..., category: _Optional[str] = ..., kind: _Optional[str] = ..., num_turns: _Optional[int] = ..., num_tools: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("categories", "kinds", "limit", "offset")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    offset: int
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "total")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskInfo]
    total: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskInfo, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ("task_id", "seed", "template", "randomize_template", "categories", "max_steps", "reward_config", "task_json", "on_parse_error", "shaping", "retrieval")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    REWARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TASK_JSON_FIELD_NUMBER: _ClassVar[int]
    ON_PARSE_ERROR_FIELD_NUMBER: _ClassVar[int]
    SHAPING_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seed: int
    template: str
    randomize_template: bool
    categories: _containers.RepeatedScalarFieldContainer[str]
    max_steps: int
    reward_config: _reward_pb2.RewardConfig
    task_json: str
    on_parse_error: str
    shaping: float
    retrieval: _reward_pb2.RetrievalOptions
    def __init__(self, task_id: _Optional[str] = ..., seed: _Optional[int] = ..., template: _Optional[str] = ..., randomize_template: _Optional[bool] = ..., categories: _Optional[_Iterable[str]] = ..., max_steps: _Optional[int] = ..., reward_config: _Optional[_Union[_reward_pb2.RewardConfig, _Mapping]] = ..., task_json: _Optional[str] = ..., on_parse_error: _Optional[str] = ..., shaping: _Optional[float] = ..., retrieval: _Optional[_Union[_reward_pb2.RetrievalOptions, _Mapping]] = ...) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ("session_id", "observation", "info_json")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    observation: str
    info_json: str
    def __init__(self, session_id: _Optional[str] = ..., observation: _Optional[str] = ..., info_json: _Optional[str] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("session_id", "action", "step_index")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    action: str
    step_index: int
    def __init__(self, session_id: _Optional[str] = ..., action: _Optional[str] = ..., step_index: _Optional[int] = ...) -> None: ...

class StepResponse(_message.Message):
    __slots__ = ("observation", "reward", "terminated", "truncated", "info_json", "score", "step_index")
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info_json: str
    score: _reward_pb2.ScoreResult
    step_index: int
    def __init__(self, observation: _Optional[str] = ..., reward: _Optional[float] = ..., terminated: _Optional[bool] = ..., truncated: _Optional[bool] = ..., info_json: _Optional[str] = ..., score: _Optional[_Union[_reward_pb2.ScoreResult, _Mapping]] = ..., step_index: _Optional[int] = ...) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseResponse(_message.Message):
    __slots__ = ("closed",)
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    closed: bool
    def __init__(self, closed: _Optional[bool] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("tag", "reset", "step", "close")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    tag: str
    reset: ResetRequest
    step: StepRequest
    close: CloseRequest
    def __init__(self, tag: _Optional[str] = ..., reset: _Optional[_Union[ResetRequest, _Mapping]] = ..., step: _Optional[_Union[StepRequest, _Mapping]] = ..., close: _Optional[_Union[CloseRequest, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("tag", "reset", "step", "close", "error")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    tag: str
    reset: ResetResponse
    step: StepResponse
    close: CloseResponse
    error: _reward_pb2.ItemError
    def __init__(self, tag: _Optional[str] = ..., reset: _Optional[_Union[ResetResponse, _Mapping]] = ..., step: _Optional[_Union[StepResponse, _Mapping]] = ..., close: _Optional[_Union[CloseResponse, _Mapping]] = ..., error: _Optional[_Union[_reward_pb2.ItemError, _Mapping]] = ...) -> None: ...

class RetrieveToolsRequest(_message.Message):
    __slots__ = ("query", "k", "retriever")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    RETRIEVER_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    retriever: str
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ..., retriever: _Optional[str] = ...) -> None: ...

class RetrievedTool(_message.Message):
    __slots__ = ("name", "id", "score", "spec_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    score: float
    spec_json: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., score: _Optional[float] = ..., spec_json: _Optional[str] = ...) -> None: ...

class RetrieveToolsResponse(_message.Message):
    __slots__ = ("tools", "retriever", "catalogue_size")
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVER_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[RetrievedTool]
    retriever: str
    catalogue_size: int
    def __init__(self, tools: _Optional[_Iterable[_Union[RetrievedTool, _Mapping]]] = ..., retriever: _Optional[str] = ..., catalogue_size: _Optional[int] = ...) -> None: ...
