"""Server reflection on both ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``.

grpcio-reflection (1.85) serves only ``v1alpha``, but current clients ask for ``v1`` first:
grpcurl, Postman, and ``@grpc/reflection``-based Node tools answer UNIMPLEMENTED and give up
or fall back noisily. The two protocols are the same messages with the same field numbers
under another package name (grpc-proto keeps them in lockstep), so one servicer answers both:
``v1`` requests are decoded and ``v1`` replies encoded with the ``v1alpha`` classes, which is
byte-for-byte what a ``v1`` peer sends and expects.

So that ``v1`` is also *described* by reflection (``describe grpc.reflection.v1.ServerReflection``),
its file descriptor is registered in the default pool, built from ``v1alpha``'s under the
``v1`` names (the layout ``protos/grpc/reflection/v1/reflection.proto`` would give).
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
        return  # another library (or an earlier server in this process) registered it
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(fdp)
    old = fdp.package
    fdp.name, fdp.package = V1_FILE, V1_PACKAGE
    fdp.options.Clear()  # v1alpha's language options (go_package, java_package) name v1alpha
    prefix = f".{old}."
    for msg in fdp.message_type:
        for f in msg.field:
            if f.type_name.startswith(prefix):
                f.type_name = f".{V1_PACKAGE}." + f.type_name[len(prefix):]
    for svc in fdp.service:
        for m in svc.method:
            m.input_type = m.input_type.replace(prefix, f".{V1_PACKAGE}.", 1)
            m.output_type = m.output_type.replace(prefix, f".{V1_PACKAGE}.", 1)
    pool.Add(fdp)


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> list[str]:
    """Serve reflection for ``service_names`` (plus both reflection services) on ``server``.

    Returns the full list of names reflection lists.
    """
    pool = descriptor_pool.Default()
    _register_v1_descriptor(pool)
    names = sorted({*service_names, V1ALPHA_SERVICE, V1_SERVICE})
    servicer = reflection.ReflectionServicer(names, pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": v1}),))
    return names
