"""The local WebSocket API over real sockets: routes read from a template, API Gateway's events and
answers, and its ``@connections`` endpoint on the same port, driven by a real boto3
``apigatewaymanagementapi`` client. The functions are fakes that record their events."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local.events import websocket_event
from local.runtime import DEFAULT_WS_PORT, LocalRuntime, LocalRuntimeError, RuntimeConfig
from local.template import DataStack, FunctionSpec, SamTemplate, TemplateError, function_environment
from local.websocket import LocalWebSocketApi, websocket_api_id, websocket_routes, websocket_stage
from tests.conftest import template as project_template

Event = dict[str, Any]
CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{15}=")

TEMPLATE = """\
Parameters:
  StageName:
    Type: String
    Default: v9
Resources:
  WatchApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"
  LifecycleIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref WatchApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub
        - "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Function}/invocations"
        - Function: !GetAtt LifecycleFunction.Arn
  MessagesIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref WatchApi
      IntegrationType: AWS_PROXY
      IntegrationUri:
        !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${MessagesFunction.Arn}/invocations"
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref WatchApi
      RouteKey: $connect
      Target: !Sub "integrations/${LifecycleIntegration}"
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref WatchApi
      RouteKey: $disconnect
      Target: !Sub "integrations/${LifecycleIntegration}"
  SubscribeRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref WatchApi
      RouteKey: subscribe
      Target: !Sub "integrations/${MessagesIntegration}"
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref WatchApi
      RouteKey: $default
      Target: !Join ["/", ["integrations", !Ref MessagesIntegration]]
  WatchStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref WatchApi
      StageName: !Ref StageName
"""


class FakeFunction:
    """Records every event; answers with ``answer(event)`` (200 by default)."""

    def __init__(self, name: str, answer: Callable[[Event], Any] | None = None) -> None:
        self.name = name
        self.answer = answer or (lambda event: {"statusCode": 200, "body": "ok"})
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def invoke(self, event: Event, *, describe: str = "") -> Any:
        with self._lock:
            self.events.append(event)
        return self.answer(event)

    def routed(self, route_key: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e["requestContext"]["routeKey"] == route_key]


def wait_for(condition: Callable[[], Any], timeout: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return result


def load(tmp_path: Path, text: str = TEMPLATE) -> SamTemplate:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return SamTemplate.load(path)


@pytest.fixture
def lifecycle() -> FakeFunction:
    return FakeFunction("LifecycleFunction")


@pytest.fixture
def messages() -> FakeFunction:
    return FakeFunction("MessagesFunction")


@pytest.fixture
def api(tmp_path: Path, lifecycle: FakeFunction, messages: FakeFunction) -> Iterator[LocalWebSocketApi]:
    functions = {"LifecycleFunction": lifecycle, "MessagesFunction": messages}
    server = LocalWebSocketApi(load(tmp_path), functions, port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clients() -> Iterator[contextlib.ExitStack]:
    """Closes every client a test opens (websockets wants each connection used as a context manager)."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def management(api: LocalWebSocketApi) -> Any:
    return management_client(api.http_url)


def management_client(endpoint_url: str) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def open_client(
    api: LocalWebSocketApi, lifecycle: FakeFunction, clients: contextlib.ExitStack, query: str = ""
) -> tuple[ClientConnection, str]:
    """A connected client and its connection id (from the ``$connect`` event it caused)."""
    before = len(lifecycle.routed("$connect"))
    client = clients.enter_context(connect(api.url + query, proxy=None, open_timeout=5, close_timeout=2))
    event = wait_for(lambda: len(lifecycle.routed("$connect")) > before and lifecycle.routed("$connect")[-1])
    connection_id = event["requestContext"]["connectionId"]
    wait_for(lambda: connection_id in api.connection_ids)
    return client, connection_id


# -- routes from the template ---------------------------------------------------------------------


def test_routes_are_read_from_the_template_routes_and_their_integrations(tmp_path: Path) -> None:
    # GIVEN a WebSocket API with two integrations (one !Sub with a variable) and four routes (one a !Join)
    template = load(tmp_path)

    # WHEN its WebSocket API, routes and stage are read
    api_id = websocket_api_id(template)
    assert api_id is not None
    routes = websocket_routes(template, api_id)

    # THEN each route goes to the function its integration's IntegrationUri names
    assert api_id == "WatchApi"
    assert routes == {
        "$connect": "LifecycleFunction",
        "$disconnect": "LifecycleFunction",
        "subscribe": "MessagesFunction",
        "$default": "MessagesFunction",
    }
    assert websocket_stage(template, api_id) == "v9"


def test_the_project_template_routes_every_websocket_route_to_one_of_its_functions() -> None:
    # GIVEN the project's template.yaml
    template = project_template()

    # WHEN its WebSocket routes are read
    api_id = websocket_api_id(template)
    assert api_id is not None
    routes = websocket_routes(template, api_id)

    # THEN the push contract's routes are there, each to a function the template declares
    assert {"$connect", "$disconnect", "subscribe", "ping"} <= set(routes)
    assert set(routes.values()) <= set(template.functions())


def test_a_route_whose_function_is_not_given_is_a_template_error(tmp_path: Path) -> None:
    # GIVEN functions that lack one the template's integrations name
    functions = {"LifecycleFunction": FakeFunction("LifecycleFunction")}

    # WHEN the API is built
    # THEN it names the missing function
    with pytest.raises(TemplateError, match="MessagesFunction"):
        LocalWebSocketApi(load(tmp_path), functions, port=0)


# -- events ---------------------------------------------------------------------------------------


def test_the_events_are_what_api_gateway_sends_as_powertools_models_them() -> None:
    # GIVEN sam local generate-event has no WebSocket event, Powertools' parser models (written from
    # API Gateway's events) are the reference
    common = {"connection_id": "BFaT_fALIAMCKug=", "connected_at": 1731332735513, "domain_name": "127.0.0.1:3001"}

    # WHEN each kind of event is built
    connect_event = websocket_event(
        "$connect", headers={"Host": ["127.0.0.1:3001"]}, query={"token": ["t"]}, user_agent="pytest", **common
    )
    message = websocket_event("subscribe", body='{"action": "subscribe"}', **common)
    disconnect = websocket_event("$disconnect", disconnect_status_code=1000, disconnect_reason="bye", **common)

    # THEN each validates against its model, with API Gateway's event types and fields
    APIGatewayWebSocketConnectEventModel.model_validate(connect_event)
    APIGatewayWebSocketMessageEventModel.model_validate(message)
    APIGatewayWebSocketDisconnectEventModel.model_validate(disconnect)
    assert connect_event["requestContext"]["eventType"] == "CONNECT"
    assert connect_event["queryStringParameters"] == {"token": "t"}
    assert connect_event["requestContext"]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "pytest"}
    assert message["requestContext"]["eventType"] == "MESSAGE"
    assert CONNECTION_ID.fullmatch(message["requestContext"]["messageId"])
    assert message["body"] == '{"action": "subscribe"}'
    assert message["isBase64Encoded"] is False
    assert "headers" not in message
    assert disconnect["requestContext"]["eventType"] == "DISCONNECT"
    assert disconnect["headers"]["Host"] == "127.0.0.1:3001"
    assert "queryStringParameters" not in disconnect


# -- connecting -----------------------------------------------------------------------------------


def test_connect_gets_the_query_string_headers_and_api_gateway_request_context(
    api: LocalWebSocketApi, lifecycle: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a client connecting with a query string
    client, connection_id = open_client(api, lifecycle, clients, "/?reportId=r-1&token=abc&tag=a&tag=b")

    # WHEN the $connect event is read
    (event,) = lifecycle.routed("$connect")
    client.close()

    # THEN it holds the query, the handshake's headers and API Gateway's request context
    assert event["queryStringParameters"] == {"reportId": "r-1", "token": "abc", "tag": "b"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["headers"]["Host"] == f"127.0.0.1:{api.port}"
    assert event["headers"]["Upgrade"] == "websocket"
    assert event["multiValueHeaders"]["Upgrade"] == ["websocket"]
    context = event["requestContext"]
    assert CONNECTION_ID.fullmatch(connection_id)
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["messageDirection"] == "IN"
    assert context["domainName"] == f"127.0.0.1:{api.port}"
    assert context["stage"] == "v9"
    assert context["apiId"] == "WatchApi"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert "websockets" in context["identity"]["userAgent"]
    assert abs(context["connectedAt"] - time.time() * 1000) < 5000
    assert isinstance(context["requestTimeEpoch"], int)
    assert event["isBase64Encoded"] is False
    APIGatewayWebSocketConnectEventModel.model_validate(event)


@pytest.mark.parametrize("status", [401, 403])
def test_a_connect_answer_outside_2xx_refuses_the_handshake_with_its_status_and_registers_nothing(
    tmp_path: Path, messages: FakeFunction, status: int
) -> None:
    # GIVEN a $connect function that refuses
    refusing = FakeFunction("LifecycleFunction", lambda event: {"statusCode": status, "body": "no token"})
    functions = {"LifecycleFunction": refusing, "MessagesFunction": messages}
    with LocalWebSocketApi(load(tmp_path), functions, port=0) as api:
        # WHEN a client connects
        with pytest.raises(InvalidStatus) as refused:
            connect(api.url, proxy=None, open_timeout=5).close()  # close() only if (wrongly) accepted

        # THEN the handshake fails with that status, and no connection exists or is disconnected later
        assert refused.value.response.status_code == status
        assert refused.value.response.body == b"no token"
        assert api.connection_ids == []
        connection_id = refusing.routed("$connect")[0]["requestContext"]["connectionId"]
        gone = management_client(api.http_url).exceptions.GoneException
        with pytest.raises(gone):
            management_client(api.http_url).get_connection(ConnectionId=connection_id)
    assert refusing.routed("$disconnect") == []


def test_a_connect_function_that_fails_refuses_the_handshake_with_500(tmp_path: Path, messages: FakeFunction) -> None:
    # GIVEN a $connect function that raises
    def fail(event: Event) -> Any:
        raise RuntimeError("boom")

    functions = {"LifecycleFunction": FakeFunction("LifecycleFunction", fail), "MessagesFunction": messages}
    with LocalWebSocketApi(load(tmp_path), functions, port=0) as api:
        # WHEN a client connects
        # THEN it is refused as API Gateway refuses when the integration fails
        with pytest.raises(InvalidStatus) as refused:
            connect(api.url, proxy=None, open_timeout=5).close()  # close() only if (wrongly) accepted
        assert refused.value.response.status_code == 500
        assert api.connection_ids == []


# -- messages -------------------------------------------------------------------------------------


def test_a_message_goes_to_the_route_its_action_names(
    api: LocalWebSocketApi, lifecycle: FakeFunction, messages: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a connected client
    client, connection_id = open_client(api, lifecycle, clients)

    # WHEN it sends a subscribe action
    text = '{"action": "subscribe", "reportId": "r-1", "token": "t"}'
    client.send(text)

    # THEN the subscribe route's function gets a MESSAGE event with the raw body
    (event,) = wait_for(lambda: messages.routed("subscribe"))
    client.close()
    context = event["requestContext"]
    assert event["body"] == text
    assert context["eventType"] == "MESSAGE"
    assert context["connectionId"] == connection_id
    assert CONNECTION_ID.fullmatch(context["messageId"])
    assert messages.routed("$default") == []
    APIGatewayWebSocketMessageEventModel.model_validate(event)


@pytest.mark.parametrize(
    "message",
    ['{"action": "dance"}', '{"reportId": "r-1"}', "not json", '["subscribe"]', '{"action": "$connect"}'],
    ids=["unknown action", "no action", "not JSON", "not an object", "a lifecycle route"],
)
def test_a_message_no_route_matches_goes_to_default(
    api: LocalWebSocketApi, lifecycle: FakeFunction, messages: FakeFunction, message: str, clients: contextlib.ExitStack
) -> None:
    # GIVEN a connected client
    client, _ = open_client(api, lifecycle, clients)

    # WHEN it sends a message no route's key matches
    client.send(message)

    # THEN $default gets it, unchanged
    (event,) = wait_for(lambda: messages.routed("$default"))
    client.close()
    assert event["body"] == message
    assert len(lifecycle.routed("$connect")) == 1


def test_without_a_default_route_an_unmatched_message_is_answered_forbidden(
    tmp_path: Path, lifecycle: FakeFunction, messages: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a template without a $default route
    text = re.sub(r"  DefaultRoute:\n(    .*\n|      .*\n)+", "", TEMPLATE)
    assert "$default" not in text
    functions = {"LifecycleFunction": lifecycle, "MessagesFunction": messages}
    with LocalWebSocketApi(load(tmp_path, text), functions, port=0) as api:
        client, connection_id = open_client(api, lifecycle, clients)

        # WHEN a client sends an unknown action
        client.send('{"action": "dance"}')

        # THEN API Gateway's Forbidden answer comes back, and no function is invoked
        answer = json.loads(client.recv(timeout=5))
        client.close()
    assert answer["message"] == "Forbidden"
    assert answer["connectionId"] == connection_id
    assert CONNECTION_ID.fullmatch(answer["requestId"])
    assert messages.events == []


def test_a_function_that_fails_on_a_message_is_answered_internal_server_error(
    tmp_path: Path, lifecycle: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a message function that raises
    def fail(event: Event) -> Any:
        raise RuntimeError("boom")

    functions = {"LifecycleFunction": lifecycle, "MessagesFunction": FakeFunction("MessagesFunction", fail)}
    with LocalWebSocketApi(load(tmp_path), functions, port=0) as api:
        client, connection_id = open_client(api, lifecycle, clients)

        # WHEN a client sends a message
        client.send('{"action": "subscribe"}')

        # THEN API Gateway's error message comes back and the connection stays open
        answer = json.loads(client.recv(timeout=5))
        client.send("still there")
        client.close()
    assert answer["message"] == "Internal server error"
    assert answer["connectionId"] == connection_id


# -- disconnecting --------------------------------------------------------------------------------


def test_a_client_close_invokes_disconnect_with_its_code(
    api: LocalWebSocketApi, lifecycle: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a connected client
    client, connection_id = open_client(api, lifecycle, clients)

    # WHEN it closes the connection
    client.close(code=1000)

    # THEN $disconnect gets the close code and reason, and the connection is gone
    (event,) = wait_for(lambda: lifecycle.routed("$disconnect"))
    context = event["requestContext"]
    assert context["connectionId"] == connection_id
    assert context["eventType"] == "DISCONNECT"
    assert context["disconnectStatusCode"] == 1000
    assert context["disconnectReason"] == "Connection Closed Normally"
    assert event["headers"]["Host"] == f"127.0.0.1:{api.port}"
    assert connection_id not in api.connection_ids
    APIGatewayWebSocketDisconnectEventModel.model_validate(event)


def test_a_delete_closes_the_connection_and_invokes_disconnect(
    api: LocalWebSocketApi, lifecycle: FakeFunction, management: Any, clients: contextlib.ExitStack
) -> None:
    # GIVEN a connected client
    client, connection_id = open_client(api, lifecycle, clients)

    # WHEN the connection is deleted through @connections
    response = management.delete_connection(ConnectionId=connection_id)

    # THEN the client is closed normally and $disconnect says so
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000
    (event,) = wait_for(lambda: lifecycle.routed("$disconnect"))
    assert event["requestContext"]["connectionId"] == connection_id
    assert event["requestContext"]["disconnectStatusCode"] == 1000


def test_stop_closes_every_client_and_each_gets_its_disconnect(
    tmp_path: Path, lifecycle: FakeFunction, messages: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a running API with two clients
    functions = {"LifecycleFunction": lifecycle, "MessagesFunction": messages}
    api = LocalWebSocketApi(load(tmp_path), functions, port=0)
    api.start()
    opened = [open_client(api, lifecycle, clients)[0] for _ in range(2)]

    # WHEN it stops
    api.stop()

    # THEN every client was closed with 1001 (going away), every $disconnect ran, and the port is free
    for client in opened:
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    codes = [event["requestContext"]["disconnectStatusCode"] for event in lifecycle.routed("$disconnect")]
    assert codes == [1001, 1001]
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", api.port))


# -- @connections ---------------------------------------------------------------------------------


def test_post_to_connection_sends_a_text_frame_to_that_client_only(
    api: LocalWebSocketApi, lifecycle: FakeFunction, management: Any, clients: contextlib.ExitStack
) -> None:
    # GIVEN two connected clients
    (first, first_id), (second, _) = open_client(api, lifecycle, clients), open_client(api, lifecycle, clients)

    # WHEN a message is posted to the first
    response = management.post_to_connection(ConnectionId=first_id, Data=b'{"type": "pong"}')

    # THEN the first receives it as text, and the second receives nothing
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert first.recv(timeout=5) == '{"type": "pong"}'
    with pytest.raises(TimeoutError):
        second.recv(timeout=0.3)
    first.close()
    second.close()


def test_a_function_can_post_to_the_connection_it_is_handling(
    tmp_path: Path, lifecycle: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a message function that answers through @connections, as the ping route does
    endpoint: list[str] = []

    def pong(event: Event) -> Any:
        connection_id = event["requestContext"]["connectionId"]
        management_client(endpoint[0]).post_to_connection(ConnectionId=connection_id, Data=b'{"type": "pong"}')
        return {"statusCode": 200}

    functions = {"LifecycleFunction": lifecycle, "MessagesFunction": FakeFunction("MessagesFunction", pong)}
    with LocalWebSocketApi(load(tmp_path), functions, port=0) as api:
        endpoint.append(api.http_url)
        client, _ = open_client(api, lifecycle, clients)

        # WHEN the client sends a message
        client.send('{"action": "ping"}')

        # THEN the answer the function posted arrives while the function is still being invoked
        assert json.loads(client.recv(timeout=5)) == {"type": "pong"}
        client.close()


def test_get_connection_answers_when_and_from_where_the_client_connected(
    api: LocalWebSocketApi, lifecycle: FakeFunction, management: Any, clients: contextlib.ExitStack
) -> None:
    # GIVEN a connected client
    client, connection_id = open_client(api, lifecycle, clients)

    # WHEN its connection is read through @connections
    info = management.get_connection(ConnectionId=connection_id)
    client.close()

    # THEN boto3 parses its times and identity
    assert isinstance(info["ConnectedAt"], datetime)
    assert isinstance(info["LastActiveAt"], datetime)
    assert abs(info["ConnectedAt"].timestamp() - time.time()) < 5
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert "websockets" in info["Identity"]["UserAgent"]


def test_an_unknown_connection_is_gone_for_every_method(api: LocalWebSocketApi, management: Any) -> None:
    # GIVEN no connection has this id
    unknown = "AAAAAAAAAAAAAAA="

    # WHEN it is posted to, read or deleted
    # THEN boto3 raises GoneException each time
    gone = management.exceptions.GoneException
    with pytest.raises(gone) as raised:
        management.post_to_connection(ConnectionId=unknown, Data=b"hello")
    assert raised.value.response["Error"]["Code"] == "GoneException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with pytest.raises(gone):
        management.get_connection(ConnectionId=unknown)
    with pytest.raises(gone):
        management.delete_connection(ConnectionId=unknown)


def test_a_closed_connection_is_gone(
    api: LocalWebSocketApi, lifecycle: FakeFunction, management: Any, clients: contextlib.ExitStack
) -> None:
    # GIVEN a client that connected and closed
    client, connection_id = open_client(api, lifecycle, clients)
    client.close()
    wait_for(lambda: lifecycle.routed("$disconnect"))

    # WHEN a message is posted to it
    # THEN boto3 raises GoneException
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"too late")


def test_management_paths_with_a_stage_prefix_work(
    api: LocalWebSocketApi, lifecycle: FakeFunction, clients: contextlib.ExitStack
) -> None:
    # GIVEN a client, and a management client whose endpoint has the stage, as the deployed URL does
    client, connection_id = open_client(api, lifecycle, clients)
    staged = management_client(f"{api.http_url}/v9")

    # WHEN it posts, reads and deletes through /v9/@connections/{id}
    staged.post_to_connection(ConnectionId=connection_id, Data=b"staged")
    received = client.recv(timeout=5)
    info = staged.get_connection(ConnectionId=connection_id)
    staged.delete_connection(ConnectionId=connection_id)

    # THEN each worked
    assert received == "staged"
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    wait_for(lambda: lifecycle.routed("$disconnect"))
    with pytest.raises(staged.exceptions.GoneException):
        staged.get_connection(ConnectionId=connection_id)


def test_every_connection_event_and_management_call_is_logged_with_its_duration(
    api: LocalWebSocketApi,
    lifecycle: FakeFunction,
    management: Any,
    caplog: pytest.LogCaptureFixture,
    clients: contextlib.ExitStack,
) -> None:
    # GIVEN a client that connects, sends, is posted to and closes
    caplog.set_level("INFO", logger="local.ws")
    client, connection_id = open_client(api, lifecycle, clients)
    client.send('{"action": "subscribe"}')
    management.post_to_connection(ConnectionId=connection_id, Data=b"x")
    client.recv(timeout=5)
    client.close()

    # WHEN the log is read once the $disconnect line is in
    def lines() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == "local.ws"]

    wait_for(lambda: any(line.startswith("DISCONNECT") for line in lines()))

    # THEN there is one line for each, with its duration
    connection = re.escape(connection_id)
    expected = [
        rf"CONNECT {connection} / -> 200 connected in \d+ ms",
        rf"MESSAGE {connection} subscribe -> ok in \d+ ms",
        rf"POST /@connections/{connection} -> 200 OK in \d+ ms",
        rf"DISCONNECT {connection} 1000 Connection Closed Normally in \d+ ms",
    ]
    for pattern in expected:
        assert [line for line in lines() if re.fullmatch(pattern, line)], pattern


# -- start-up and the runtime ---------------------------------------------------------------------


def test_a_port_in_use_is_a_runtime_error_naming_local_ws_port(
    tmp_path: Path, lifecycle: FakeFunction, messages: FakeFunction
) -> None:
    # GIVEN something listening on a port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        api = LocalWebSocketApi(
            load(tmp_path), {"LifecycleFunction": lifecycle, "MessagesFunction": messages}, port=port
        )

        # WHEN the API starts on it
        with pytest.raises(LocalRuntimeError) as raised:
            api.start()

    # THEN it says the port is in use and which variable chooses another
    assert f"port {port} on 127.0.0.1 is already in use" in str(raised.value)
    assert "LOCAL_WS_PORT=" in str(raised.value)


def test_local_ws_port_is_read_and_checked_like_the_other_ports() -> None:
    # GIVEN environments with and without LOCAL_WS_PORT
    # WHEN the configuration is read
    # THEN it defaults to 3001, takes a port number, and refuses anything else naming the variable
    assert RuntimeConfig.from_environment({}).ws_port == DEFAULT_WS_PORT == 3001
    assert RuntimeConfig.from_environment({"LOCAL_WS_PORT": "0"}).ws_port == 0
    assert RuntimeConfig.from_environment({"LOCAL_WS_PORT": "4001"}).ws_port == 4001
    with pytest.raises(LocalRuntimeError, match="LOCAL_WS_PORT must be a port number"):
        RuntimeConfig.from_environment({"LOCAL_WS_PORT": "70000"})


def test_a_websocket_port_in_use_fails_before_moto_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN moto must not start, and something listens on the WebSocket port
    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("the moto server was started before the port in use was found")

    monkeypatch.setattr("local.embedded.embedded_aws", refuse)
    monkeypatch.setattr("moto.server.ThreadedMotoServer.start", refuse)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # WHEN the runtime starts
        with pytest.raises(LocalRuntimeError) as raised:
            LocalRuntime(RuntimeConfig(api_port=0, ws_port=port)).start()

    # THEN it names the port and LOCAL_WS_PORT
    assert f"port {port} on 127.0.0.1 is already in use" in str(raised.value)
    assert "LOCAL_WS_PORT=" in str(raised.value)


def test_overridden_variables_are_never_resolved() -> None:
    # GIVEN a function whose management URL names the WebSocket API, which is no data resource
    spec = FunctionSpec(
        logical_id="ConnectionsFunction",
        handler="handlers.connections.handler",
        timeout=3,
        memory_size=128,
        environment={
            "WEBSOCKET_MANAGEMENT_URL": {"Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com"},
            "PRESIGN_EXPIRES_SECONDS": "300",
        },
        events={},
    )
    stack = DataStack("local", "us-east-1", "123456789012", physical_ids={}, resource_types={}, parameters={})

    # WHEN its environment is resolved with and without the local value
    resolved = function_environment(spec, stack, {"WEBSOCKET_MANAGEMENT_URL": "http://127.0.0.1:3001"})

    # THEN the override replaces the template's value; without it, resolving fails
    assert resolved == {"WEBSOCKET_MANAGEMENT_URL": "http://127.0.0.1:3001", "PRESIGN_EXPIRES_SECONDS": "300"}
    with pytest.raises(TemplateError, match="WebSocketApi"):
        function_environment(spec, stack)
