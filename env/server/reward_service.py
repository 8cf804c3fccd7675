"""RewardService: score raw outputs with the reward engine (design §2, one code path)."""

from __future__ import annotations

import queue
import threading
from typing import Iterator

import grpc

from toolgym.env.parsers import TEMPLATES
from toolgym.env.reward.config import RewardConfig
from toolgym.env.reward.engine import ScoringError, score_output
from toolgym.env.reward.trajectory import ScoreResult
from toolgym.env.server.convert import reward_config_from_proto, score_to_proto
from toolgym.env.server.errors import RequestError, code_number, exhausted, invalid, precondition, rpc_errors
from toolgym.env.server.resolve import resolve_task
from toolgym.env.server.retrieval_rpc import retrieval_options, warm_retriever
from toolgym.env.retrieval.episode_retrieval import EpisodeRetrieval, score_retrieval_output
from toolgym.env.retrieval.source import RetrievalSource
from toolgym.env.tasks.suite import Suite
from toolgym.env.types import Task
from toolgym.v1 import reward_pb2, reward_pb2_grpc


class RewardServicer(reward_pb2_grpc.RewardServiceServicer):
    def __init__(self, suite: Suite, config: RewardConfig, *, max_output_chars: int, max_batch_items: int,
                 retrieval: RetrievalSource | None = None):
        self._suite = suite
        self._retrieval = retrieval or RetrievalSource(lambda: list(suite))
        self._config = config
        self._max_output_chars = max_output_chars
        self._max_batch_items = max_batch_items

    def score_one(self, req: reward_pb2.ScoreRequest) -> reward_pb2.ScoreResponse:
        """Score one request; raises RequestError for anything the caller must fix."""
        if len(req.output) > self._max_output_chars:
            raise exhausted(
                f"output is {len(req.output)} characters; the server accepts at most {self._max_output_chars} "
                "(truncate the model output, or start the server with a larger --max-output-chars)"
            )
        if req.template and req.template not in TEMPLATES:
            raise invalid(f"unknown template {req.template!r}; use one of {list(TEMPLATES)} or leave it empty to auto-detect")
        task = resolve_task(self._suite, req.task_id, req.task_json)
        try:
            cfg = reward_config_from_proto(req.reward_config if req.HasField("reward_config") else None, self._config)
        except ValueError as e:
            raise invalid(f"reward_config: {e}") from None
        try:
            if req.HasField("retrieval"):
                result = self._score_retrieval(task, req, cfg)
            else:
                result = score_output(task, req.output, req.template or None, cfg)
        except ScoringError as e:
            raise precondition(str(e)) from None
        return reward_pb2.ScoreResponse(result=score_to_proto(result), request_id=req.request_id)

    def _score_retrieval(self, task: Task, req: reward_pb2.ScoreRequest, cfg: RewardConfig) -> ScoreResult:
        retrieval = retrieval_options(req.retrieval)
        if retrieval["retrieval"] == "search":
            raise invalid("retrieval mode 'search' feeds search results back to the model, so one output cannot be scored "
                          "that way: play it with EnvService Reset/Step, or score with 'none' / 'pre_retrieved'")
        if retrieval["retrieval"] == "pre_retrieved":
            warm_retriever(self._retrieval, str(retrieval["retriever"]))
        try:
            retr = EpisodeRetrieval.build(task, tool_pool=str(retrieval["tool_pool"]), mode=str(retrieval["retrieval"]),
                                          retriever=str(retrieval["retriever"]), k=int(retrieval["retrieval_k"]), seed=0,
                                          source=self._retrieval)
        except ValueError as e:
            raise invalid(f"retrieval: {e}") from None
        return score_retrieval_output(task, req.output, req.template or None, cfg, retr)

    def _score_item(self, req: reward_pb2.ScoreRequest) -> reward_pb2.ScoreResponse:
        try:
            return self.score_one(req)
        except RequestError as e:
            return reward_pb2.ScoreResponse(
                request_id=req.request_id, error=reward_pb2.ItemError(code=code_number(e.code), message=e.message)
            )

    @rpc_errors
    def Score(self, request: reward_pb2.ScoreRequest, context: grpc.ServicerContext) -> reward_pb2.ScoreResponse:
        return self.score_one(request)

    @rpc_errors
    def ScoreBatch(self, request: reward_pb2.ScoreBatchRequest, context: grpc.ServicerContext) -> reward_pb2.ScoreBatchResponse:
        n = len(request.items)
        if n > self._max_batch_items:
            raise exhausted(f"batch has {n} items; at most {self._max_batch_items} per ScoreBatch — split it, or use ScoreStream")
        return reward_pb2.ScoreBatchResponse(results=[self._score_item(it) for it in request.items])

    def ScoreStream(self, request_iterator: Iterator[reward_pb2.ScoreRequest], context: grpc.ServicerContext) -> Iterator[reward_pb2.ScoreResponse]:
        """Pipelined: a reader thread receives requests (up to ``_STREAM_WINDOW`` ahead) while this
        one scores and sends, so receiving the next request overlaps scoring and sending this one.
        Responses keep the request order; a failed item is an in-band error, as in ScoreBatch."""
        window: queue.Queue = queue.Queue(maxsize=_STREAM_WINDOW)
        stop = threading.Event()

        def put(x: object) -> bool:
            while not stop.is_set():
                try:
                    window.put(x, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            try:
                for req in request_iterator:
                    if not put(req):
                        return
            except Exception as e:  # the client went away or cancelled: the stream ends
                put(_StreamEnd(e))
                return
            put(_StreamEnd(None))

        reader = threading.Thread(target=read, name="score-stream-reader", daemon=True)
        reader.start()
        try:
            while True:
                req = window.get()
                if isinstance(req, _StreamEnd):
                    if req.error is not None and context.is_active():
                        raise req.error
                    return
                if not context.is_active():
                    return
                yield self._score_item(req)
        finally:
            stop.set()


#: ScoreStream requests received ahead of the one being scored.
_STREAM_WINDOW = 64


class _StreamEnd:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None):
        self.error = error
