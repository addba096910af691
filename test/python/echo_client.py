"""A Python grpcio peer for the interoperability tests.

Compiles proto/echo/v1/echo.proto at start (grpc_tools), then over mTLS:
  echo MESSAGE      prints the EchoResponse as JSON
  check SERVICE     prints the health status name
  watch SERVICE     prints each health status as it arrives, until NOT_SERVING
"""
import argparse
import importlib
import json
import os
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_echo_stubs():
    out = tempfile.mkdtemp(prefix="echo-py-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{os.path.join(ROOT, 'proto')}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "echo/v1/echo.proto",
    ])
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, out)
    return importlib.import_module("echo.v1.echo_pb2"), importlib.import_module("echo.v1.echo_pb2_grpc")


def channel(args):
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.target, creds, options)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--server-name", default="")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("command", choices=["echo", "check", "watch"])
    parser.add_argument("arg", nargs="?", default="")
    args = parser.parse_args()

    with channel(args) as ch:
        if args.command == "echo":
            pb2, pb2_grpc = load_echo_stubs()
            res = pb2_grpc.EchoServiceStub(ch).Echo(pb2.EchoRequest(message=args.arg), timeout=args.timeout)
            print(json.dumps({"message": res.message, "server_id": res.server_id, "caller": res.caller}))
        elif args.command == "check":
            res = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=args.arg), timeout=args.timeout)
            print(health_pb2.HealthCheckResponse.ServingStatus.Name(res.status))
        else:
            stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=args.arg), timeout=args.timeout)
            for res in stream:
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)
                print(name, flush=True)
                if name == "NOT_SERVING":
                    stream.cancel()
                    break


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as err:
        print(f"{err.code().name}: {err.details()}", file=sys.stderr)
        sys.exit(3)
