"""List a concur coordinator's services through server reflection (v1alpha)."""
import sys

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7070"
with grpc.insecure_channel(target) as channel:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    for response in stub.ServerReflectionInfo(iter([request])):
        for service in response.list_services_response.service:
            print(service.name)
