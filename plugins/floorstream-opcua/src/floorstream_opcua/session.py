"""The OPC UA side: one asyncua client, in an asyncio loop on a thread of its own.

It connects (securely if configured), resolves browse paths, creates one subscription with a
monitored item per configured variable (and one event item for alarms), then turns each
publish response into floorstream records and hands them, in order, to the adapter's thread
through a bounded queue. When the queue is full the publish loop waits, so a slow pipeline
slows the server's publishing instead of growing memory (the server's own queues, per item,
then keep the newest values, as OPC UA specifies).

On any loss (socket closed, session or subscription gone, no publish for too long) the client
is dropped and a new one connects with a growing delay: a new session, the subscription
created again. OPC UA has no replay, so what is delivered after a reconnect is each item's
*current* value (the initial notification every new monitored item gets) and a
ConditionRefresh of the alarms; the detectors, whose state is committed, post only what
differs from what they last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.ua_binary import struct_to_binary

from floorstream.plugin import AdapterContext, Change, Event

from .alarms import AlarmBook
from .config import ItemConfig, OpcuaConfig
from .connect import APPLICATION_URI, close_client, open_client, reason
from .values import Unreadable, plain, position

__all__ = ["APPLICATION_URI", "Item", "OpcuaSession", "Record", "browse_path"]

def _nid(identifier: int) -> ua.NodeId:
    """A namespace-0 numeric NodeId (asyncua's annotations want its own Int32 type)."""
    return ua.NodeId(ua.Int32(identifier))


#: what the event item selects of each alarm event, in this order
_ALARM_FIELDS: list[tuple[int, str]] = [
    (ObjectIds.BaseEventType, "EventId"), (ObjectIds.BaseEventType, "EventType"),
    (ObjectIds.BaseEventType, "SourceName"), (ObjectIds.BaseEventType, "Time"),
    (ObjectIds.BaseEventType, "Message"), (ObjectIds.BaseEventType, "Severity"),
    (ObjectIds.ConditionType, "ConditionName"), (ObjectIds.ConditionType, "Retain"),
    (ObjectIds.AlarmConditionType, "ActiveState/Id"),
    (ObjectIds.AlarmConditionType, "ActiveState/TransitionTime"),
    (ObjectIds.AcknowledgeableConditionType, "AckedState/Id"),
]
_REFRESH_START = _nid(ObjectIds.RefreshStartEventType)
_REFRESH_END = _nid(ObjectIds.RefreshEndEventType)
_ALARM_HANDLE = 0  # client handle of the event item; data items count from 1

#: ``(kind, payload)`` handed to the adapter's thread: ``change`` (a Change), ``event``
#: (Event, checkpoint), ``problem`` (subject, message, position), ``quarantine`` (raw,
#: reason, position, context)
Record = tuple[str, Any]


@dataclass
class Item:
    """A configured item as the session uses it: its handle is its index + 1."""

    config: ItemConfig
    subject: str
    handle: int
    node: ua.NodeId | None = None
    span: float | None = None  # EURange high - low, for a percent deadband
    last: Any = None  # the value last passed on (the client side of the deadband)
    bad: bool = False  # last notification had a bad status (logged once per episode)


class _Stale(ConnectionError):
    """The subscription stopped publishing though the socket is up."""


class _Feed(Subscription):
    """A subscription whose publish responses go to one coroutine, in order.

    asyncua 2's Subscription dispatches each notification to a handler in a task of its own,
    or queues it with a drop policy; floorstream needs them in order and none dropped, so the
    whole response is handed over and the publish loop waits until it has been queued.
    """

    def __init__(self, client: Client, params: ua.CreateSubscriptionParameters,
                 sink: Any) -> None:
        super().__init__(client.uaclient.session, params, handler=None, queue_maxsize=1)
        self._sink = sink

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if message.NotificationData is None:
            return  # a keep-alive
        self.last_sequence_number = int(message.SequenceNumber)
        await self._sink(message.NotificationData)


class OpcuaSession:
    """Connects, subscribes, converts, reconnects; :meth:`run` is the thread's target."""

    def __init__(self, config: OpcuaConfig, context: AdapterContext,
                 out: queue.Queue[list[Record]]) -> None:
        self.config = config
        self.context = context
        self.log = context.log
        self.out = out
        self.items = [Item(c, c.subject or config.subject or "", i + 1)
                      for i, c in enumerate(config.items)]
        self.by_handle = {item.handle: item for item in self.items}
        self.book = (AlarmBook(config.name, config.alarms, context.checkpoint,
                               dict(config.attrs)) if config.alarms is not None else None)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self.connects = 0  # sessions made (tests and the bench read it)
        self.connected_once = False  # the current attempt got as far as subscribing
        self.notifications = 0
        #: per subject, the instant, base position and ordinal of its last change (``_ordinal``)
        self._instants: dict[str, tuple[datetime, str, int]] = {}

    # -- the thread ----------------------------------------------------------------------

    def run(self) -> None:
        asyncio.run(self._main())

    def stop(self) -> None:
        self._stop_requested.set()
        loop, stopping = self.loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopping.set)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested.is_set():
            return
        delay = self.config.reconnect.min_delay
        while not self._stopping.is_set():
            # one session as a task, so a stop cancels even a connect that hangs on a
            # server that accepted the socket and says nothing
            session = asyncio.create_task(self._session())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not session.done():
                session.cancel()
                with contextlib.suppress(BaseException):
                    await session
                break
            error = session.exception()
            if error is None:  # _session returns only when asked to stop
                break
            if self.connected_once:  # it had worked: the next attempt starts quickly
                delay = self.config.reconnect.min_delay
            self.context.health.disconnected(reason(error))
            self.log.warning("opcua_connection_failed", url=self.config.url,
                             error=reason(error), retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.config.reconnect.max_delay)

    async def _session(self) -> None:
        """Connect, subscribe, and watch until asked to stop (returns) or the connection is
        lost (raises); the client is closed either way."""
        self.connected_once = False
        client: Client | None = None
        try:
            client = await self._connect()
            feed = await self._subscribe(client)
            self.context.health.connected()
            self.connected_once = True
            self.log.info("opcua_subscribed", url=self.config.url, items=len(self.items),
                          alarms=self.book is not None, session=self.connects)
            await self._watch(client, feed)
        finally:
            if client is not None:
                await self._disconnect(client)

    async def _watch(self, client: Client, feed: _Feed) -> None:
        """Return when asked to stop; raise when the connection or the subscription is
        lost (asyncua's supervisor marks the client disconnected on a dead socket or a
        failed probe; a subscription that stopped publishing is found here)."""
        params = feed.parameters
        keepalive = max(int(params.RequestedMaxKeepAliveCount or 1), 1)
        stale_after = max(params.RequestedPublishingInterval / 1000 * keepalive * 3, 5.0)
        assert self._stopping is not None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.2)
            if client.state is not UaClientState.CONNECTED:
                raise ConnectionError("connection to the server lost")
            last = feed.last_publish_at
            if last is not None and time.monotonic() - last > stale_after:
                raise _Stale(f"no publish response for {stale_after:.0f} s")

    # -- connecting ----------------------------------------------------------------------

    async def _connect(self) -> Client:
        self.connects += 1
        return await open_client(self.config, self.log)

    async def _disconnect(self, client: Client) -> None:
        await close_client(client)

    # -- subscribing ---------------------------------------------------------------------

    async def _subscribe(self, client: Client) -> _Feed:
        config = self.config
        await self._resolve(client)
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = config.publishing_interval * 1000
        params.RequestedMaxKeepAliveCount = client.get_keepalive_count(
            config.publishing_interval * 1000)
        params.RequestedLifetimeCount = params.RequestedMaxKeepAliveCount * 3
        params.MaxNotificationsPerPublish = 0  # the server's limit
        params.PublishingEnabled = True
        params.Priority = 0
        feed = _Feed(client, params, self._on_notifications)
        await feed.init()
        for item in self.items:
            item.last = None  # a new subscription: every item's first value passes
        usable = [item for item in self.items if item.node is not None]
        for start in range(0, len(usable), config.batch):
            chunk = usable[start:start + config.batch]
            results = await feed.create_monitored_items([self._request(i) for i in chunk])
            for item, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    await self._problem(item, f"cannot monitor {item.config.key}: "
                                              f"{result.name}", result.name)
        if self.book is not None:
            await self._subscribe_alarms(client, feed)
        return feed

    async def _resolve(self, client: Client) -> None:
        """NodeIds for every item: parsed, or translated from the browse path (in one
        request per batch), plus the EURange of percent-deadband items."""
        paths: list[Item] = []
        for item in self.items:
            if item.config.node is not None:
                item.node = ua.NodeId.from_string(item.config.node)
            else:
                item.node = None
                paths.append(item)
        for start in range(0, len(paths), self.config.batch):
            chunk = paths[start:start + self.config.batch]
            results = await client.uaclient.translate_browsepaths_to_nodeids(
                [browse_path(item.config) for item in chunk])
            for item, result in zip(chunk, results, strict=True):
                if result.StatusCode.is_good() and result.Targets:
                    target = result.Targets[0].TargetId
                    item.node = ua.NodeId(target.Identifier, target.NamespaceIndex,
                                          target.NodeIdType)
                else:
                    await self._problem(item, f"browse path {item.config.path} not found on "
                                              f"the server ({result.StatusCode.name})",
                                        result.StatusCode.name)
        for item in self.items:
            deadband = item.config.deadband
            if item.node is None or deadband is None or deadband.percent is None:
                continue
            try:
                rng = await client.get_node(item.node).get_child("0:EURange")
                value = await rng.read_value()
                item.span = float(value.High - value.Low)
            except Exception as exc:
                item.span = None
                await self._problem(item, f"{item.config.key} has no EURange, which a percent "
                                          f"deadband needs ({reason(exc)})", "no-eurange")

    def _request(self, item: Item) -> ua.MonitoredItemCreateRequest:
        config = item.config
        read = ua.ReadValueId()
        read.NodeId = item.node
        read.AttributeId = AttributeIds.Value
        params = ua.MonitoringParameters()
        params.ClientHandle = item.handle
        interval = (config.sampling_interval if config.sampling_interval is not None
                    else self.config.sampling_interval)
        params.SamplingInterval = interval * 1000
        params.QueueSize = config.queue_size
        params.DiscardOldest = True
        if config.deadband is not None:
            flt = ua.DataChangeFilter()
            flt.Trigger = ua.DataChangeTrigger.StatusValue
            if config.deadband.absolute is not None:
                flt.DeadbandType = ua.DeadbandType.Absolute
                flt.DeadbandValue = config.deadband.absolute
            else:
                flt.DeadbandType = ua.DeadbandType.Percent
                flt.DeadbandValue = config.deadband.percent
            params.Filter = flt
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = read
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = params
        return request

    async def _subscribe_alarms(self, client: Client, feed: _Feed) -> None:
        assert self.config.alarms is not None and self.book is not None
        evfilter = ua.EventFilter()
        for type_id, name in _ALARM_FIELDS:
            op = ua.SimpleAttributeOperand()
            op.TypeDefinitionId = _nid(type_id)
            op.BrowsePath = [ua.QualifiedName(part, 0) for part in name.split("/")]
            op.AttributeId = AttributeIds.Value
            evfilter.SelectClauses.append(op)
        condition_id = ua.SimpleAttributeOperand()  # the ConditionId: the condition's NodeId
        condition_id.TypeDefinitionId = _nid(ObjectIds.ConditionType)
        condition_id.AttributeId = AttributeIds.NodeId
        evfilter.SelectClauses.append(condition_id)
        evfilter.WhereClause = await _alarm_types(client)
        read = ua.ReadValueId()
        read.NodeId = ua.NodeId.from_string(self.config.alarms.node)
        read.AttributeId = AttributeIds.EventNotifier
        params = ua.MonitoringParameters()
        params.ClientHandle = _ALARM_HANDLE
        params.QueueSize = 1000
        params.DiscardOldest = True
        params.Filter = evfilter
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = read
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = params
        (result,) = await feed.create_monitored_items([request])
        if isinstance(result, ua.StatusCode):
            raise ConnectionError(f"cannot subscribe to alarms on {self.config.alarms.node}: "
                                  f"{result.name}")
        try:  # the current state of every retained condition, between RefreshStart/End
            await client.get_node(ObjectIds.ConditionType).call_method(
                _nid(ObjectIds.ConditionType_ConditionRefresh),
                ua.Variant(feed.subscription_id, ua.VariantType.UInt32))
        except Exception as exc:
            self.log.warning("opcua_condition_refresh_failed", error=reason(exc),
                             consequence="an alarm that ended while disconnected is not "
                                         "cleared until its next event")

    # -- notifications ---------------------------------------------------------------------

    async def _on_notifications(self, data: list[Any]) -> None:
        records: list[Record] = []
        try:
            for notification in data:
                if isinstance(notification, ua.DataChangeNotification):
                    self._data(notification, records)
                elif isinstance(notification, ua.EventNotificationList):
                    self._events(notification, records)
                elif isinstance(notification, ua.StatusChangeNotification):
                    self.log.warning("opcua_subscription_status",
                                     status=notification.Status.name)
        except Exception as exc:  # a bug costs this response, not the session
            self.log.error("opcua_notification_failed", error=repr(exc), exc_info=True)
            records.append(("quarantine", (repr(data).encode()[:65536],
                                           f"internal error: {exc!r}", None,
                                           {"reason": "internal"})))
        if records:
            await self._put(records)

    def _data(self, notification: ua.DataChangeNotification, records: list[Record]) -> None:
        """One change per machine and instant: the values of one subject that carry the same
        source timestamp (sampled together, as a PLC stamps a scan) become the fields of one
        change, so ten variables of a press cost the pipeline one item, not ten. A field
        that comes twice for one instant (a queue replaying A→B) starts another change."""
        source, kind = self.config.name, self.config.kind
        attrs = self.config.attrs
        now = datetime.now(UTC)
        groups: list[tuple[str, datetime | None, dict[str, Any]]] = []
        open_groups: dict[tuple[str, datetime | None], dict[str, Any]] = {}
        for monitored in notification.MonitoredItems:
            item = self.by_handle.get(monitored.ClientHandle)
            if item is None:
                continue
            self.notifications += 1
            value = monitored.Value
            status = value.StatusCode
            if status is not None and not status.is_good():
                if not item.bad:
                    item.bad = True
                    self.log.warning("opcua_bad_value", item=item.config.key,
                                     subject=item.subject, status=status.name)
                continue
            if item.bad:
                item.bad = False
                self.log.info("opcua_value_good_again", item=item.config.key)
            raw = value.Value.Value if value.Value is not None else None
            when = value.SourceTimestamp or value.ServerTimestamp
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            try:
                data = plain(raw)
            except Unreadable as exc:
                records.append(("quarantine", (
                    struct_to_binary(value), f"{item.config.key}: {exc}",
                    position(item.config.key, when or now, repr(raw)),
                    {"node": item.config.key, "reason": "invalid"})))
                continue
            if not self._passes_deadband(item, data):
                continue
            item.last = data
            field = item.config.field
            fields = open_groups.get((item.subject, when))
            if fields is None or field in fields:
                fields = open_groups[(item.subject, when)] = {}
                groups.append((item.subject, when, fields))
            fields[field] = data
        construct = Change.model_construct
        for subject, when, fields in groups:
            # a server that sends no timestamps: the time it was seen, or a value that
            # recurs (A, B, A, B) would come back at the position it had the first time
            stamp = when or now
            records.append(("change", construct(
                source=source, subject=subject, kind=kind,
                position=self._ordinal(subject, stamp,
                                       position(subject, stamp, sorted(fields.items()))),
                observed_at=now,
                occurred_at=when, data=fields, before=None, attrs=dict(attrs))))

    def _ordinal(self, subject: str, stamp: datetime, base: str) -> str:
        """``base`` (the position of these readings at ``stamp``) with the ordinal of this
        change of ``subject`` at that instant: none for the first, ``~1``, ``~2``… for each
        that differs from the one before. A coarse PLC clock can stamp A → B → A with one
        time; without the ordinal the second A would have the first A's position, hence its
        id, and be dropped as already posted. The same readings again at the same instant
        (a re-read after a reconnect) keep their position."""
        last = self._instants.get(subject)
        if last is None or last[0] != stamp:
            ordinal = 0
        elif last[1] == base:
            ordinal = last[2]
        else:
            ordinal = last[2] + 1
        self._instants[subject] = (stamp, base, ordinal)
        return f"{base}~{ordinal}" if ordinal else base

    @staticmethod
    def _passes_deadband(item: Item, value: Any) -> bool:
        """The deadband, applied here too: some servers accept the filter and ignore it
        (asyncua's own ignores a percent one). The server compares with the last value it
        reported, this with the last one passed on: the same rule."""
        deadband = item.config.deadband
        last = item.last
        if deadband is None or last is None or not _number(value) or not _number(last):
            return True
        limit = (deadband.absolute if deadband.absolute is not None else
                 None if item.span is None else deadband.percent / 100 * item.span
                 if deadband.percent is not None else None)
        return limit is None or abs(value - last) > limit

    def _events(self, notification: ua.EventNotificationList, records: list[Record]) -> None:
        book = self.book
        if book is None:
            return
        now = datetime.now(UTC)
        names = [name for _, name in _ALARM_FIELDS] + ["ConditionId"]
        for event in notification.Events:
            if event.ClientHandle != _ALARM_HANDLE:
                continue
            fields = {name: variant.Value for name, variant in
                      zip(names, event.EventFields, strict=False)}
            event_type = fields.get("EventType")
            if event_type == _REFRESH_START:
                book.refresh_started()
                continue
            made: list[Event] = (book.refresh_ended(now) if event_type == _REFRESH_END
                                 else book.handle(fields, now))
            if made:
                checkpoint = book.checkpoint()
                for index, item in enumerate(made):
                    records.append(("event", (item, checkpoint if index == len(made) - 1
                                              else None)))

    async def _problem(self, item: Item, message: str, status: str) -> None:
        self.log.error("opcua_item_failed", item=item.config.key, error=message)
        await self._put([("problem", (item.subject, message, f"{item.config.key}|{status}"))])

    async def _put(self, records: list[Record]) -> None:
        """Hand over, waiting (without blocking the loop) while the adapter's queue is
        full: the publish loop awaits this, so the server waits too."""
        while True:
            try:
                self.out.put_nowait(records)
                return
            except queue.Full:
                if self._stopping is not None and self._stopping.is_set():
                    return  # stopping: nothing will be acknowledged anyway
                await asyncio.sleep(0.005)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def browse_path(item: ItemConfig) -> ua.BrowsePath:
    path = ua.BrowsePath()
    path.StartingNode = _nid(ObjectIds.RootFolder)
    relative = ua.RelativePath()
    for namespace, name in item.segments():
        element = ua.RelativePathElement()
        element.ReferenceTypeId = _nid(ObjectIds.HierarchicalReferences)
        element.IsInverse = False  # type: ignore[assignment]  # asyncua's Boolean is bool
        element.IncludeSubtypes = True  # type: ignore[assignment]
        element.TargetName = ua.QualifiedName(name, namespace)
        relative.Elements.append(element)
    path.RelativePath = relative
    return path


async def _alarm_types(client: Client) -> ua.ContentFilter:
    """``EventType InList (AlarmConditionType and its subtypes, RefreshStart, RefreshEnd)``:
    only alarms and the brackets of a refresh come, not every event the server has."""
    types: list[ua.NodeId] = [_REFRESH_START, _REFRESH_END]
    pending = [_nid(ObjectIds.AlarmConditionType)]
    while pending:  # the subtype tree, breadth first
        node = pending.pop()
        types.append(node)
        children = await client.get_node(node).get_children(
            refs=ObjectIds.HasSubtype, nodeclassmask=ua.NodeClass.ObjectType)
        pending.extend(child.nodeid for child in children)
    element = ua.ContentFilterElement()
    operand = ua.SimpleAttributeOperand()
    operand.TypeDefinitionId = _nid(ObjectIds.BaseEventType)
    operand.BrowsePath = [ua.QualifiedName("EventType", 0)]
    operand.AttributeId = AttributeIds.Value
    element.FilterOperator = ua.FilterOperator.InList
    element.FilterOperands = [operand] + [ua.LiteralOperand(Value=ua.Variant(t)) for t in types]
    content = ua.ContentFilter()
    content.Elements = [element]
    return content
