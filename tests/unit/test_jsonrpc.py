from __future__ import annotations

import json

import pytest

from mcp_remote_py.core.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    Kind,
    LineSplitter,
    MessageError,
    encode,
    error_response,
    line,
    parse_message,
    parse_payload,
)


def test_classifies_request_notification_response() -> None:
    assert parse_message(b'{"jsonrpc":"2.0","id":1,"method":"ping"}').kind is Kind.REQUEST
    assert parse_message(b'{"jsonrpc":"2.0","method":"notifications/x"}').kind is Kind.NOTIFICATION
    assert parse_message(b'{"jsonrpc":"2.0","id":"a","result":{}}').kind is Kind.RESPONSE
    error = parse_message(b'{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}}')
    assert error.kind is Kind.RESPONSE
    assert error.id is None


def test_string_and_integer_ids_are_kept_apart() -> None:
    assert parse_message(b'{"jsonrpc":"2.0","id":1,"method":"ping"}').id == 1
    assert parse_message(b'{"jsonrpc":"2.0","id":"1","method":"ping"}').id == "1"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"not json", PARSE_ERROR),
        (b"\xff\xfe{}", PARSE_ERROR),
        (b"[1, 2]", INVALID_REQUEST),
        (b"42", INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":true,"method":"x"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":7}', INVALID_REQUEST),
    ],
)
def test_bad_lines_name_the_error_code(line: bytes, code: int) -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(line)
    assert caught.value.code == code


def test_deeply_nested_json_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(b"[" * 100_000)
    assert caught.value.code == PARSE_ERROR
    with pytest.raises(MessageError):
        parse_payload("[" * 100_000)


def test_invalid_request_keeps_the_id_so_the_error_can_answer_it() -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(b'{"jsonrpc":"2.0","id":9,"method":7}')
    assert caught.value.request_id == 9


def test_invalid_utf8_says_so() -> None:
    with pytest.raises(MessageError, match="UTF-8"):
        parse_message(b'{"a":"\xc3\x28"}')


def test_one_line_text_is_relayed_verbatim() -> None:
    text = '{"jsonrpc":"2.0", "id":1,   "result":{"x":"é"}}'
    [message] = parse_payload(text)
    assert encode(message) == text.encode() + b"\n"
    [from_bytes] = parse_payload(text.encode())
    assert line(from_bytes) is not None
    assert line(from_bytes) == text.encode()


def test_utf16_is_refused_even_though_json_would_take_it() -> None:
    data = '{"jsonrpc":"2.0","id":1,"method":"ping"}'.encode("utf-16-le")
    with pytest.raises(MessageError) as caught:
        parse_message(data)
    assert caught.value.code == PARSE_ERROR
    assert "UTF-8" in str(caught.value)
    with pytest.raises(MessageError):
        parse_payload(data)


def test_multi_line_payload_is_reencoded_onto_one_line() -> None:
    text = '{"jsonrpc":"2.0",\n"id":1,\r\n"result":{"text":"a\\nb"}}'
    [message] = parse_payload(text)
    line = encode(message)
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    assert json.loads(line) == {"jsonrpc": "2.0", "id": 1, "result": {"text": "a\nb"}}


def test_batch_payload_yields_each_message_on_its_own_line() -> None:
    messages = parse_payload('[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":2,"result":1}]')
    assert [m.kind for m in messages] == [Kind.NOTIFICATION, Kind.RESPONSE]
    assert all(encode(m).count(b"\n") == 1 for m in messages)


def test_garbage_payload_raises_parse_error() -> None:
    with pytest.raises(MessageError) as caught:
        parse_payload("<html>502</html>")
    assert caught.value.code == PARSE_ERROR


def test_encode_keeps_unicode_and_is_compact() -> None:
    line = encode(error_response(3, -32001, "ça ne marche pas", {"status": 502}))
    assert (
        line
        == (
            '{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"ça ne marche pas",'
            '"data":{"status":502}}}\n'
        ).encode()
    )


def test_line_splitter_handles_chunks_crlf_and_blank_lines() -> None:
    splitter = LineSplitter(max_line=1000)
    assert splitter.feed(b'{"a":1}\r\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n\n  \n") == [b'{"b":2}']
    assert splitter.feed(b'{"c":3}') == []
    assert splitter.finish() == [b'{"c":3}']


def test_line_splitter_drops_an_overlong_line_and_goes_on() -> None:
    splitter = LineSplitter(max_line=10)
    out = splitter.feed(b"x" * 8)
    out += splitter.feed(b"x" * 8)
    out += splitter.feed(b"x" * 100 + b'\n{"ok":1}\n')
    assert out == [None, b'{"ok":1}']


def test_line_splitter_is_linear_for_a_50mb_line() -> None:
    splitter = LineSplitter(max_line=64 * 1024 * 1024)
    chunk = b"a" * 65536
    lines: list[bytes | None] = []
    for _ in range(800):  # 50 MiB in 64 KiB chunks: quadratic rescanning would take minutes
        lines += splitter.feed(chunk)
    lines += splitter.feed(b"\n")
    assert len(lines) == 1
    assert lines[0] is not None
    assert len(lines[0]) == 800 * 65536


def big(envelope: str, filler: str = "x", size: int = 2 << 20) -> bytes:
    """A one-line message above KEEP_PARSED_BELOW: ``envelope`` with {TEXT} replaced by a long
    string of ``filler``."""
    return envelope.replace("{TEXT}", filler * size).encode()


@pytest.mark.parametrize(
    ("text", "kind", "request_id", "method"),
    [
        (
            '{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"{TEXT}"}]}}',
            Kind.RESPONSE,
            7,
            None,
        ),
        ('{"result":{"t":"{TEXT}"},"jsonrpc":"2.0","id":"a"}', Kind.RESPONSE, "a", None),
        (
            '{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"{TEXT}"}}',
            Kind.RESPONSE,
            None,
            None,
        ),
        (
            '{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"t":"{TEXT}"}}',
            Kind.REQUEST,
            3,
            "sampling/createMessage",
        ),
        (
            '{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"{TEXT}"}}',
            Kind.NOTIFICATION,
            None,
            "notifications/message",
        ),
    ],
)
def test_large_messages_are_classified_from_their_envelope(
    text: str, kind: Kind, request_id: object, method: str | None
) -> None:
    for data in (big(text), big(text, filler="é", size=1 << 20)):
        for message in (parse_message(data), parse_payload(data)[0]):
            assert (message.kind, message.id, message.method) == (kind, request_id, method)
            assert message.raw is data  # relayed as it came
            assert message.body == json.loads(data)  # parsed again only when asked


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"jsonrpc":"2.0","id":1,"result":{"t":"{TEXT}"}', PARSE_ERROR),  # unclosed
        ('{"jsonrpc":"2.0","id":1,"result":{"t":"{TEXT}"},"x":tru}', PARSE_ERROR),
        ('{"jsonrpc":"2.0","id":1,"result":{"t":"{TEXT}\\q"}}', PARSE_ERROR),  # bad escape
        ('{"jsonrpc":"2.0","id":1,"result":{"t":"{TEXT}"}} x', PARSE_ERROR),  # trailing
        ('{"jsonrpc":"2.0","id":1.5,"result":{"t":"{TEXT}"}}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":true,"method":"m","params":{"t":"{TEXT}"}}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1,"method":5,"params":{"t":"{TEXT}"}}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1,"params":{"t":"{TEXT}"}}', INVALID_REQUEST),
        (
            '{"jsonrpc":"2.0","id":1,"result":' + "[" * 5000 + '"{TEXT}"' + "]" * 5000 + "}",
            PARSE_ERROR,
        ),
    ],
)
def test_large_bad_messages_get_the_same_errors_as_small_ones(text: str, code: int) -> None:
    data = big(text)
    for parse in (parse_message, parse_payload):
        with pytest.raises(MessageError) as caught:
            parse(data)
        assert caught.value.code == code


def test_large_invalid_utf8_is_refused_even_inside_a_skipped_string() -> None:
    data = big('{"jsonrpc":"2.0","id":1,"result":{"t":"{TEXT}"}}').replace(b"xxx", b"x\xffx", 1)
    with pytest.raises(MessageError, match="not valid UTF-8"):
        parse_message(data)
    with pytest.raises(MessageError, match="not JSON"):
        parse_payload(data)


def test_a_large_batch_is_parsed_in_full() -> None:
    data = big('[{"jsonrpc":"2.0","id":1,"result":{"t":"{TEXT}"}},{"jsonrpc":"2.0","method":"n"}]')
    first, second = parse_payload(data)
    assert (first.kind, first.id, second.kind) == (Kind.RESPONSE, 1, Kind.NOTIFICATION)
    assert first.body["result"]["t"] == "x" * (2 << 20)


def test_a_message_knows_it_is_an_error_without_being_parsed_again() -> None:
    small_error = parse_message(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"m"}}')
    assert small_error.is_error
    assert not small_error.is_large
    big = b'{"jsonrpc":"2.0","id":1,"result":{"t":"' + b"x" * (2 << 20) + b'"}}'
    (large_result,) = parse_payload(big)
    assert large_result.is_large
    assert not large_result.is_error
    big_error = b'{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"' + b"x" * (2 << 20) + b'"}}'
    (large_error,) = parse_payload(big_error)
    assert large_error.is_large
    assert large_error.is_error


@pytest.mark.parametrize("size", [10, 2 << 20], ids=["small", "large"])
def test_result_type_is_read_without_parsing_a_large_result_again(size: int) -> None:
    raw = (
        b'{"jsonrpc":"2.0","id":1,"result":{"pad":"'
        + b"x" * size
        + b'","resultType":"input_required"}}'
    )
    (message,) = parse_payload(raw)
    assert message.is_large is (size > 1 << 20)
    assert message.result_type == "input_required"
    (plain,) = parse_payload(b'{"jsonrpc":"2.0","id":1,"result":{"pad":"' + b"x" * size + b'"}}')
    assert plain.result_type is None
    (odd,) = parse_payload(b'{"jsonrpc":"2.0","id":1,"result":[' + b"1," * size + b"1]}")
    assert odd.result_type is None


def test_a_lone_surrogate_is_written_escaped_not_raised() -> None:
    message = parse_message(b'{"jsonrpc":"2.0","id":1,"method":"m","params":{"t":"\\ud83d"}}')
    text = line(message.body)
    assert isinstance(text, str)
    text.encode("utf-8")  # what stdout and the HTTP body do
    assert json.loads(text)["params"]["t"] == "\ud83d"


@pytest.mark.parametrize(
    ("line_", "request_id", "text"),
    [
        (b'{"id":1,"method":"tools/list"}', 1, '"jsonrpc": "2.0"'),
        (b'{"jsonrpc":"1.0","id":"a","method":"x"}', "a", '"jsonrpc": "2.0"'),
        (b'{"method":"notifications/initialized"}', None, '"jsonrpc": "2.0"'),
        (b'{"jsonrpc":"2.0","id":null,"method":"tools/list"}', None, "may not be null"),
        (
            b'{"id":7,"method":"tools/call","params":{"t":"' + b"x" * (2 << 20) + b'"}}',
            7,
            '"jsonrpc": "2.0"',
        ),
    ],
    ids=["no-jsonrpc", "wrong-version", "notification-without", "null-id", "large-without"],
)
def test_a_client_line_that_is_not_json_rpc_2_is_invalid_request(
    line_: bytes, request_id: object, text: str
) -> None:
    with pytest.raises(MessageError) as raised:
        parse_message(line_)
    assert raised.value.code == INVALID_REQUEST
    assert raised.value.request_id == request_id
    assert text in str(raised.value)


def test_a_large_client_line_with_jsonrpc_is_accepted() -> None:
    message = parse_message(
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"t":"' + b"x" * (2 << 20) + b'"}}'
    )
    assert message.id == 7
    assert message.is_large


@pytest.mark.parametrize("size", [10, 2 << 20], ids=["small", "large"])
@pytest.mark.parametrize(
    ("meta", "version"),
    [
        (b'{"io.modelcontextprotocol/protocolVersion":"2026-07-28","x":1}', "2026-07-28"),
        (b'{"io.modelcontextprotocol/protocolVersion":7}', None),
        (b'{"progressToken":1}', None),
        (b"5", None),
    ],
    ids=["modern", "not-a-string", "no-version", "meta-not-an-object"],
)
def test_the_declared_version_is_read_without_parsing_a_large_request_again(
    size: int, meta: bytes, version: str | None
) -> None:
    line_ = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"pad":"'
        + b"x" * size
        + b'","_meta":'
        + meta
        + b"}}"
    )
    message = parse_message(line_)
    assert message.is_large is (size > 1 << 20)
    assert message.protocol_version == version
