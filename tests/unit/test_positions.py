"""LSP positions <-> offsets: UTF-16/8/32, CRLF, clamping, against a reference."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from jpilot.lsp.positions import offset_at, position_at

U8 = PositionCodec(types.PositionEncodingKind.Utf8)
U16 = PositionCodec(types.PositionEncodingKind.Utf16)
U32 = PositionCodec(types.PositionEncodingKind.Utf32)


def test_utf16_counts_astral_characters_twice():
    text = "a\U0001f600b\nxy"
    assert offset_at(text, types.Position(0, 3), U16) == 2  # after the emoji
    assert position_at(text, 2, U16) == types.Position(0, 3)
    assert position_at(text, 2, U8) == types.Position(0, 5)
    assert position_at(text, 2, U32) == types.Position(0, 2)


def test_crlf_and_cr_line_breaks():
    text = "ab\r\ncd\ref"
    assert offset_at(text, types.Position(1, 1), U16) == 5
    assert offset_at(text, types.Position(2, 0), U16) == 7
    assert position_at(text, 7, U16) == types.Position(2, 0)


def test_clamping_past_line_and_document_end():
    text = "abc\nde"
    assert offset_at(text, types.Position(0, 99), U16) == 3  # before the line break
    assert offset_at(text, types.Position(9, 0), U16) == len(text)
    assert offset_at("", types.Position(0, 5), U16) == 0
    assert position_at(text, 999, U16) == types.Position(1, 2)


def _reference(text: str, offset: int) -> types.Position:
    """Count lines and UTF-16 units the slow, obvious way."""
    before = text[:offset]
    lines = re.split(r"\r\n|\r|\n", before)
    return types.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)


@given(st.text(alphabet=st.sampled_from("ab\n\r\U0001f600é\t")), st.integers(0, 40))
def test_round_trip_matches_reference(text: str, offset: int):
    offset = min(offset, len(text))
    if text[offset - 1 : offset + 1] == "\r\n" and offset > 0:
        offset -= 1  # between \r and \n is not a position
    pos = position_at(text, offset, U16)
    assert pos == _reference(text, offset)
    assert offset_at(text, pos, U16) == offset


CHUNKS = st.sampled_from(["a", "b", "\n", "\r\n", "\r", "\U0001f600", "é", " "])
UNIT = {
    "utf-8": lambda c: len(c.encode()),
    "utf-16": lambda c: len(c.encode("utf-16-le")) // 2,
    "utf-32": lambda c: 1,
}


def _reference_offset(text: str, line: int, character: int, encoding: str) -> int:
    """Walk the text the slow, obvious way: LSP line breaks, code units, clamping."""
    lines = re.split(r"(\r\n|\r|\n)", text)  # content, break, content, break, ...
    offset = 0
    for i in range(0, len(lines), 2):
        if i // 2 == line:
            count = 0
            for j, c in enumerate(lines[i]):
                if count >= character:
                    return offset + j
                count += UNIT[encoding](c)
            return offset + len(lines[i])
        offset += len(lines[i]) + (len(lines[i + 1]) if i + 1 < len(lines) else 0)
    return len(text)


EDITS = st.lists(
    st.tuples(
        st.integers(0, 4), st.integers(0, 6), st.integers(0, 4), st.integers(0, 6),
        st.lists(CHUNKS, max_size=4).map("".join),
    ),
    max_size=6,
)  # fmt: skip


@given(st.lists(CHUNKS, max_size=12).map("".join), EDITS, st.sampled_from(sorted(UNIT)))
def test_random_edits_match_a_reference(text: str, edits: list, encoding: str):
    """Incremental edits (astral characters, CRLF, CR, empty documents, past-the-end
    positions) under utf-8/16/32 give the same text as a reference."""
    from pygls.workspace import Workspace

    from jpilot.lsp.positions import apply_change

    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental, None, encoding)
    workspace.put_text_document(types.TextDocumentItem("file:///x", "plaintext", 0, text))
    reference = text
    for version, (l1, c1, l2, c2, new) in enumerate(edits, start=1):
        a = _reference_offset(reference, l1, c1, encoding)
        b = max(a, _reference_offset(reference, l2, c2, encoding))
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(l1, c1), types.Position(l2, c2)), text=new
        )
        identifier = types.VersionedTextDocumentIdentifier(uri="file:///x", version=version)
        apply_change(workspace, identifier, change)
        reference = reference[:a] + new + reference[b:]
        doc = workspace.get_text_document("file:///x")
        assert doc.source == reference and doc.version == version


def test_a_change_for_a_document_never_opened_is_ignored():
    from pygls.workspace import Workspace

    from jpilot.lsp.positions import apply_change

    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    change = types.TextDocumentContentChangeWholeDocument(text="x")
    apply_change(
        workspace, types.VersionedTextDocumentIdentifier(uri="file:///n", version=1), change
    )
    assert workspace.text_documents == {}


@given(
    st.text(alphabet="ab\r\n\u00e9\U0001f600", max_size=30),
    st.data(),
    st.text(alphabet="ab\r\n\U0001f600", max_size=6),
)
def test_an_edit_derives_the_line_starts_a_full_scan_finds(source: str, data, insert: str):
    from jpilot.lsp.positions import edited, line_starts

    lo = data.draw(st.integers(0, len(source)))
    hi = data.draw(st.integers(lo, len(source)))
    line_starts(source)  # cached: the edit derives the new ones from these
    result = edited(source, lo, hi, insert)
    assert result == source[:lo] + insert + source[hi:]
    assert line_starts(result).tolist() == [
        0,
        *(m.end() for m in re.finditer(r"\r\n|\r|\n", result)),
    ]


@given(st.text(alphabet="ab\r\n\u00e9\U0001f600\ud800", max_size=60))
def test_the_numpy_scan_of_big_documents_finds_the_regex_line_starts(text: str):
    """Documents over 64k characters are scanned as arrays of code points (ASCII or not)."""
    from jpilot.lsp.positions import _scan_codes

    want = [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]
    assert _scan_codes(text).tolist() == want
