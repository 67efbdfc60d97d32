"""A real OPC UA server for the tests and the benchmark: asyncua's full server stack, started
as a process of its own (so a test can stop and start it like a PLC reboot).

    python opcua_server.py --port 48400 [--cert s.der --key s.pem] [--user u:p [--open]]
                           [--state RUNNING] [--bench 10000 --period 1.0]

It prints ``READY <port>`` once it listens. The tests run :func:`main` on a thread of their
own instead (``opcua_support.OpcuaServer``): the same server, without a second interpreter
importing asyncua. Address space (namespace ``urn:floorstream:test``):

    Objects/Line1/Press07/State        ns=2;s=Press07.State        String  "RUNNING"
    Objects/Line1/Press07/SpindleTemp  ns=2;s=Press07.SpindleTemp  Double  70.0 (EURange 0–200)
    Objects/Line1/Press07/Count        ns=2;s=Press07.Count        Int32   0
    Objects/Line1/Press07/Mode         ns=2;s=Press07.Mode         LocalizedText "Automatic"
    Objects/Line1/Press07/Recipe       ns=2;s=Press07.Recipe       a structure of an unknown type
    Objects/Line1/Press07/SetAlarm(active, acked, severity, message)
        fires an AlarmConditionType event for the condition ns=2;s=Press07.Overheat
    Objects/Bench/V0 … V<n-1>          ns=2;i=1000+k               Double, all changed every
                                                                   --period seconds
Variables are writable: tests change them with an ordinary client write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import Server, ua
from asyncua.common.methods import uamethod
from asyncua.crypto.permission_rules import User, UserRole

NAMESPACE = "urn:floorstream:test"
SERVER_URI = "urn:floorstream:test:server"


class _Passwords:
    """Accepts one user name and password, and anonymous sessions only when asked."""

    def __init__(self, user: str, password: str, anonymous: bool) -> None:
        self.user, self.password, self.anonymous = user, password, anonymous

    def get_user(self, iserver: object, username: str | None = None,
                 password: str | None = None, certificate: object = None) -> User | None:
        if username == self.user and password == self.password:
            return User(role=UserRole.User)
        if username is None and self.anonymous:
            return User(role=UserRole.User)
        return None


async def main(args: argparse.Namespace, stop: asyncio.Event | None = None,
               ready: Callable[[], None] | None = None) -> None:
    """Serve until ``stop`` is set (default: SIGTERM/SIGINT); ``ready`` is called once it
    listens (default: print ``READY <port>``)."""
    user_manager = None
    if args.user:
        name, _, password = args.user.partition(":")
        user_manager = _Passwords(name, password, args.open)
    server = Server(user_manager=user_manager)  # type: ignore[arg-type]
    server.iserver.bind_condition_methods = True  # ConditionRefresh, as real servers have
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{args.port}/floorstream/")
    server.set_server_name("floorstream test server")
    await server.set_application_uri(SERVER_URI)
    if args.cert:
        await server.load_certificate(args.cert)
        await server.load_private_key(args.key)
        server.set_security_policy([
            *([ua.SecurityPolicyType.NoSecurity] if args.open else []),
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
            ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
        ])
    if args.user:
        server.set_identity_tokens([ua.UserNameIdentityToken, *(
            [ua.AnonymousIdentityToken] if args.open else [])])
    ns = await server.register_namespace(NAMESPACE)
    line = await server.nodes.objects.add_folder(ns, "Line1")
    press = await line.add_object(ua.NodeId("Press07", ns), ua.QualifiedName("Press07", ns))
    state = await press.add_variable(ua.NodeId("Press07.State", ns), ua.QualifiedName("State", ns),
                                     args.state)
    temp = await press.add_variable(ua.NodeId("Press07.SpindleTemp", ns),
                                    ua.QualifiedName("SpindleTemp", ns), 70.0)
    # EURange is a standard property (namespace 0): what a percent deadband is relative to
    await temp.add_property(0, "EURange", ua.Range(Low=0.0, High=200.0))
    count = await press.add_variable(ua.NodeId("Press07.Count", ns), ua.QualifiedName("Count", ns),
                                     ua.Variant(0, ua.VariantType.Int32))
    # a structure of a type the server does not describe: no plain value for floorstream
    blob = await press.add_variable(
        ua.NodeId("Press07.Recipe", ns), ua.QualifiedName("Recipe", ns),
        ua.Variant(ua.ExtensionObject(TypeId=ua.NodeId(4242, ns),
                                      Body=b"\x01\x02recipe-7"), ua.VariantType.ExtensionObject),
        datatype=ua.NodeId(ua.ObjectIds.Structure))
    label = await press.add_variable(ua.NodeId("Press07.Mode", ns), ua.QualifiedName("Mode", ns),
                                     ua.LocalizedText("Automatic", "en"))
    for node in (state, temp, count, blob, label):
        await node.set_writable()

    alarm = await server.get_event_generator(ua.ObjectIds.AlarmConditionType,
                                             emitting_node=ua.ObjectIds.Server)
    alarm.event.SourceNode = press.nodeid
    alarm.event.SourceName = "press-07"
    alarm.event.ConditionName = "Overheat"
    alarm.event.NodeId = ua.NodeId("Press07.Overheat", ns)
    # asyncua types UtcTime properties by NodeId, which its Variant refuses: say DateTime
    alarm.event.data_types["ActiveState/TransitionTime"] = ua.VariantType.DateTime

    @uamethod
    async def set_alarm(parent: object, active: bool, acked: bool, severity: int,
                        message: str) -> None:
        now = datetime.now(UTC)
        event = alarm.event
        if bool(getattr(event, "ActiveState/Id", False)) != active:
            setattr(event, "ActiveState/TransitionTime", now)
        setattr(event, "ActiveState/Id", active)
        event.ActiveState = ua.LocalizedText("Active" if active else "Inactive")
        setattr(event, "AckedState/Id", acked)
        event.AckedState = ua.LocalizedText("Acknowledged" if acked else "Unacknowledged")
        event.Severity = severity
        event.Retain = active or not acked
        await alarm.trigger(time_attr=now, message=message)

    await press.add_method(ns, "SetAlarm", set_alarm,
                           [ua.VariantType.Boolean, ua.VariantType.Boolean,
                            ua.VariantType.UInt16, ua.VariantType.String], [])

    bench_nodes: list[ua.NodeId] = []
    if args.bench:  # one AddNodes request for all (10,000 add_variable calls take minutes)
        folder = await server.nodes.objects.add_folder(ns, "Bench")
        requests = []
        for k in range(args.bench):
            request = ua.AddNodesItem()
            request.RequestedNewNodeId = ua.NodeId(1000 + k, ns)
            request.BrowseName = ua.QualifiedName(f"V{k}", ns)
            request.NodeClass = ua.NodeClass.Variable
            request.ParentNodeId = folder.nodeid
            request.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
            request.TypeDefinition = ua.NodeId(ua.ObjectIds.BaseDataVariableType)
            attrs = ua.VariableAttributes()
            attrs.DisplayName = ua.LocalizedText(f"V{k}")
            attrs.DataType = ua.NodeId(ua.ObjectIds.Double)
            attrs.Value = ua.Variant(0.0, ua.VariantType.Double)
            attrs.ValueRank = ua.ValueRank.Scalar
            attrs.AccessLevel = attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
            request.NodeAttributes = attrs
            requests.append(request)
        for result in await server.iserver.isession.add_nodes(requests):
            result.StatusCode.check()
            bench_nodes.append(result.AddedNodeId)

    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        if ready is None:
            print(f"READY {args.port}", flush=True)
        else:
            ready()
        tick, started = 0, loop.time()
        while not stop.is_set():
            # on a fixed beat (start + tick × period), however long the writes took
            pause = started + (tick + 1) * args.period - loop.time() if bench_nodes else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(pause, 0.0))
            if bench_nodes and not stop.is_set():
                tick += 1
                now = datetime.now(UTC)
                for k, node in enumerate(bench_nodes):
                    await server.write_attribute_value(node, ua.DataValue(
                        ua.Variant(float(tick + k % 7), ua.VariantType.Double),
                        SourceTimestamp=now, ServerTimestamp=now))


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user", help="name:password; refuses anonymous sessions")
    parser.add_argument("--open", action="store_true", help="with --cert/--user: also offer "
                        "security None and anonymous sessions")
    parser.add_argument("--state", default="RUNNING", help="Press07.State at start")
    parser.add_argument("--bench", type=int, default=0)
    parser.add_argument("--period", type=float, default=1.0)
    return parser


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
    sys.exit(0)
