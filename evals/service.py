"""gRPC ``toolgym.v1.EvalService``: KAgentBench scoring over the wire, same code path as the CLI.

The server registers it with :func:`add_to_server`; nothing here imports the server's internals::

    from toolgym.evals.service import add_to_server
    add_to_server(grpc_server)            # -> the EvalServicer instance

``Evaluate`` takes a small batch in one message; ``EvaluateStream`` (client streaming) and ``ScoreItems``
(bidirectional, per-item results as they are scored) take large sets. All three call
:func:`toolgym.evals.kagentbench.score` / ``score_item`` — identical numbers to the CLI and the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from toolgym.evals.kagentbench import ABILITIES, KAgentReport, score, score_item
from toolgym.v1 import eval_pb2, eval_pb2_grpc

__all__ = ["EvalServicer", "add_to_server", "SERVICE_NAME", "records_to_pb", "result_from_pb", "EvalClient"]

SERVICE_NAME = eval_pb2.DESCRIPTOR.services_by_name["EvalService"].full_name

_MISSING = object()


def records_to_pb(items: Iterable[dict], predictions: dict) -> Iterator[eval_pb2.KAgentRecord]:
    """Pair items with predictions (``{id: model_predict}``) as protobuf records."""
    for it in items:
        mp = predictions.get(str(it.get("id")), _MISSING)
        yield eval_pb2.KAgentRecord(
            item_json=json.dumps(it, ensure_ascii=False),
            model_predict_json="" if mp is _MISSING else json.dumps(mp, ensure_ascii=False),
            has_prediction=mp is not _MISSING,
        )


def _decode(rec: eval_pb2.KAgentRecord) -> tuple[dict, object]:
    try:
        item = json.loads(rec.item_json)
    except json.JSONDecodeError as e:
        raise ValueError(f"item_json is not JSON: {e}") from e
    except RecursionError:
        raise ValueError("item_json is nested too deeply to decode; send a KAgentBench item object") from None
    if not isinstance(item, dict) or "id" not in item:
        raise ValueError("item_json must be an object with an 'id'")
    from toolgym.evals.kagentbench import validate_item

    validate_item(item)
    mp = _MISSING
    if rec.has_prediction:
        try:
            mp = json.loads(rec.model_predict_json) if rec.model_predict_json else ""
        except json.JSONDecodeError as e:
            raise ValueError(f"model_predict_json of item {item['id']!r} is not JSON: {e}") from e
        except RecursionError:
            raise ValueError(f"model_predict_json of item {item['id']!r} is nested too deeply to decode") from None
    return item, mp


def _result_pb(report: KAgentReport, include_items: bool) -> eval_pb2.KAgentResult:
    s = eval_pb2.AbilityScores()
    for a in ABILITIES:
        v = getattr(report, a)
        if v is not None:
            setattr(s, a, v)
    if report.overall is not None:
        s.overall = report.overall
    if report.bleu.get("concluding") is not None:
        s.bleu_concluding = report.bleu["concluding"]
    if report.bleu.get("profile") is not None:
        s.bleu_profile = report.bleu["profile"]
    counts = {k: int(v) for k, v in report.counts.items() if isinstance(v, int)}
    return eval_pb2.KAgentResult(
        scores=s, counts=counts, strict=report.strict, tokenizer=report.tokenizer,
        report_json=json.dumps(report.to_dict(items=include_items), ensure_ascii=False),
    )


def result_from_pb(res: eval_pb2.KAgentResult) -> dict:
    """A plain dict (abilities, overall, bleu, counts, ...) from a ``KAgentResult``."""
    out: dict = {}
    for f in (*ABILITIES, "overall", "bleu_concluding", "bleu_profile"):
        out[f] = getattr(res.scores, f) if res.scores.HasField(f) else None
    out["counts"] = dict(res.counts)
    out["strict"] = res.strict
    out["tokenizer"] = res.tokenizer
    out["report"] = json.loads(res.report_json) if res.report_json else {}
    return out


class EvalServicer(eval_pb2_grpc.EvalServiceServicer):
    """Stateless: every call scores exactly the records it was sent."""

    def __init__(self, *, max_records: int = 1_000_000):
        self.max_records = max_records

    def _score(self, options: eval_pb2.EvalOptions, records: Iterable[eval_pb2.KAgentRecord], context):
        items, preds = [], {}
        for n, rec in enumerate(records, 1):
            if n > self.max_records:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"more than {self.max_records} records")
            try:
                item, mp = _decode(rec)
            except ValueError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            items.append(item)
            if mp is not _MISSING:
                preds[str(item["id"])] = mp
        report = score(items, preds, strict=options.strict, bleu=not options.skip_bleu,
                       details=options.include_items, name=options.name)
        return _result_pb(report, options.include_items)

    def Evaluate(self, request, context):
        return eval_pb2.EvaluateResponse(result=self._score(request.options, request.records, context))

    def EvaluateStream(self, request_iterator, context):
        options = eval_pb2.EvalOptions()

        def records():
            nonlocal options
            for msg in request_iterator:
                if msg.HasField("options"):
                    options = msg.options
                elif msg.HasField("record"):
                    yield msg.record

        recs = list(records())
        return eval_pb2.EvaluateStreamResponse(result=self._score(options, recs, context))

    def ScoreItems(self, request_iterator, context):
        options = eval_pb2.EvalOptions()
        items, preds = [], {}
        for msg in request_iterator:
            if msg.HasField("options"):
                options = msg.options
                continue
            if not msg.HasField("record"):
                continue
            try:
                item, mp = _decode(msg.record)
            except ValueError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            items.append(item)
            if mp is not _MISSING:
                preds[str(item["id"])] = mp
            r = score_item(item, None if mp is _MISSING else mp, strict=options.strict,
                           bleu=not options.skip_bleu, keep_text=False)
            yield eval_pb2.ScoreItemsResponse(item=eval_pb2.ItemScore(
                id=r.id, type=r.type, scores={k: float(v) for k, v in r.scores.items() if v is not None},
                issues=r.issues))
        report = score(items, preds, strict=options.strict, bleu=not options.skip_bleu,
                       details=options.include_items, name=options.name)
        yield eval_pb2.ScoreItemsResponse(result=_result_pb(report, options.include_items))


class Registered(list):
    """The full names of the services registered (for health checking and reflection); ``.servicer``
    is the servicer instance."""

    servicer: EvalServicer


def add_to_server(server: grpc.Server, servicer: EvalServicer | None = None, **kwargs) -> Registered:
    """Register ``EvalService`` on a ``grpc.Server``.

    Returns ``["toolgym.v1.EvalService"]`` (a list, so a server can mark them SERVING in its health
    service and list them for reflection); the servicer is at ``.servicer``.
    """
    servicer = servicer or EvalServicer(**kwargs)
    eval_pb2_grpc.add_EvalServiceServicer_to_server(servicer, server)
    names = Registered([SERVICE_NAME])
    names.servicer = servicer
    return names


class EvalClient:
    """Client for ``EvalService`` (what the CLI uses with ``--server``).

    Connection options are :class:`toolgym.env.client.ToolgymClient`'s — ``token``, ``tls``,
    ``tls_ca``, ``tls_cert``/``tls_key``, ``tls_server_name``, ``credentials`` — and so are their
    environment variables (``$TOOLGYM_AUTH_TOKEN``, ``$TOOLGYM_TLS_CA``, ...): a server started with
    ``--auth-token`` or TLS is reached the same way for evals as for rewards and rollouts.
    """

    def __init__(self, address: str, *, timeout: float = 600.0, **connection: Any):
        from toolgym.env.client import ToolgymClient  # one place builds channels: TLS, token, LB

        # Eval batches are large (a whole benchmark in one Evaluate); the server's own cap still applies.
        options = (("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20))
        self._client = ToolgymClient(address, timeout=timeout, options=options, **connection)
        self.channel = self._client.channel
        self.stub = eval_pb2_grpc.EvalServiceStub(self.channel)
        self.timeout = timeout
        self._metadata = self._client.call_metadata

    def evaluate(self, items, predictions, *, strict=False, bleu=True, include_items=False, name="",
                 stream: bool | None = None) -> dict:
        opts = eval_pb2.EvalOptions(strict=strict, skip_bleu=not bleu, include_items=include_items, name=name)
        recs = list(records_to_pb(items, predictions))
        if stream is None:
            stream = len(recs) > 500
        if not stream:
            res = self.stub.Evaluate(eval_pb2.EvaluateRequest(options=opts, records=recs), timeout=self.timeout,
                                    metadata=self._metadata)
        else:
            def gen():
                yield eval_pb2.EvaluateStreamRequest(options=opts)
                for r in recs:
                    yield eval_pb2.EvaluateStreamRequest(record=r)
            res = self.stub.EvaluateStream(gen(), timeout=self.timeout, metadata=self._metadata)
        return result_from_pb(res.result)

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
