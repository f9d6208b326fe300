"""SSE decoder: framing only, chunk boundaries anywhere."""

from __future__ import annotations

from cfgateway.wire.sse import SSEDecoder, SSEEvent

# The legacy Workers AI stream from docs/wire-notes.md §1.4, plus a multi-byte character.
LEGACY = (
    b'data: {"response":"Hello","p":"abdefghijklmn"}\n\n'
    b'data: {"response":" w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80","p":"abdefghijklmnoprstu"}\n\n'
    b'data: {"response":"","usage":{"prompt_tokens":169,"completion_tokens":48,"total_tokens":217}}\n\n'
    b"data: [DONE]\n\n"
)


def run(chunks: list[bytes]) -> list[SSEEvent]:
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out.extend(dec.feed(c))
    out.extend(dec.flush())
    return out


def expected_legacy() -> list[SSEEvent]:
    return [
        SSEEvent(None, '{"response":"Hello","p":"abdefghijklmn"}'),
        SSEEvent(None, '{"response":" wörld € 😀","p":"abdefghijklmnoprstu"}'),
        SSEEvent(None, '{"response":"","usage":{"prompt_tokens":169,"completion_tokens":48,"total_tokens":217}}'),
        SSEEvent(None, "[DONE]"),
    ]


def test_whole_stream() -> None:
    events = run([LEGACY])
    assert events == expected_legacy()
    assert [e.is_done for e in events] == [False, False, False, True]


def test_split_at_every_byte_offset() -> None:
    want = expected_legacy()
    for i in range(len(LEGACY) + 1):
        assert run([LEGACY[:i], LEGACY[i:]]) == want, i


def test_split_at_every_pair_of_offsets_with_crlf() -> None:
    body = LEGACY.replace(b"\n", b"\r\n")
    want = expected_legacy()
    step = 7  # a pair of cuts every 7 bytes keeps this fast but still hits every kind of boundary
    for i in range(0, len(body) + 1, step):
        for j in range(i, len(body) + 1, 3):
            assert run([body[:i], body[i:j], body[j:]]) == want, (i, j)


def test_byte_by_byte_with_each_line_ending() -> None:
    want = expected_legacy()
    for ending in (b"\n", b"\r\n", b"\r"):
        body = LEGACY.replace(b"\n", ending)
        assert run([bytes([b]) for b in body]) == want, ending


def test_crlf_split_between_chunks_does_not_make_an_empty_line() -> None:
    # "\r" ends chunk 1, "\n" starts chunk 2: one line ending, not two (which would dispatch early)
    events = run([b"data: a\r", b"\ndata: b\r\n\r\n"])
    assert events == [SSEEvent(None, "a\nb")]


def test_utf8_split_inside_character() -> None:
    raw = "data: é€😀\n\n".encode()
    for i in range(len(raw) + 1):
        assert run([raw[:i], raw[i:]]) == [SSEEvent(None, "é€😀")]


def test_multiple_data_lines_joined_with_newline() -> None:
    assert run([b"data: one\ndata: two\ndata:three\n\n"]) == [SSEEvent(None, "one\ntwo\nthree")]


def test_comments_ids_and_retry_ignored_event_name_kept() -> None:
    body = b": keep-alive\nid: 7\nretry: 1000\nevent: message_start\ndata: {}\n\n: ping\n\ndata: x\n\n"
    assert run([body]) == [SSEEvent("message_start", "{}"), SSEEvent(None, "x")]


def test_event_name_resets_after_dispatch_and_without_data() -> None:
    body = b"event: ping\n\ndata: a\n\n"  # an event with no data is not dispatched, and its name is dropped
    assert run([body]) == [SSEEvent(None, "a")]


def test_only_one_leading_space_removed_and_field_without_colon() -> None:
    assert run([b"data:  two spaces\n\ndata\n\n"]) == [SSEEvent(None, " two spaces"), SSEEvent(None, "")]


def test_flush_emits_event_without_trailing_blank_line() -> None:
    dec = SSEDecoder()
    assert dec.feed(b'data: {"a":1}') == []
    assert dec.flush() == [SSEEvent(None, '{"a":1}')]
    dec = SSEDecoder()
    assert dec.feed(b"data: x\n") == []
    assert dec.flush() == [SSEEvent(None, "x")]


def test_flush_on_empty_and_complete_input_returns_nothing() -> None:
    dec = SSEDecoder()
    assert dec.flush() == []
    dec = SSEDecoder()
    assert dec.feed(b"data: x\n\n") == [SSEEvent(None, "x")]
    assert dec.flush() == []


def test_truncated_utf8_at_end_becomes_replacement_char() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: \xe2\x82") == []
    assert dec.flush() == [SSEEvent(None, "\ufffd")]


def test_leading_bom_stripped() -> None:
    assert run([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [SSEEvent(None, "x")]


def test_anthropic_named_events() -> None:
    body = (
        b'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\n'
        b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'
    )
    events = run([body[:40], body[40:]])
    assert [(e.event, e.data) for e in events] == [
        ("message_start", '{"type":"message_start"}'),
        ("message_stop", '{"type":"message_stop"}'),
    ]
    assert not any(e.is_done for e in events)
