"""100 malformed uploads, built deterministically, and a few damaged files a parser can still read.

Every file in `malformed_files()` is unreadable as a document: the upload APIs refuse it up front
(kinds in `REFUSED_AT_UPLOAD`: empty, or neither a PDF nor UTF-8 text) or the `documents` worker must end
it FAILED with a reason. `recoverable_files()` are damaged PDFs whose text really is there; a
parser that reads them is right to, so they are not counted as malformed.
"""
from __future__ import annotations

import gzip
import io
import random
import re
import zlib
from dataclasses import dataclass
from unittest import mock

from pypdf import PdfReader, PdfWriter

from tests.pdfs import assemble, stream, text_pdf

REFUSED_AT_UPLOAD = ("empty", "wrong-magic", "bad-utf8")
PAGE = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
CONTENT = b"BT /F1 12 Tf 72 720 Td (Readable words on the page.) Tj ET"


@dataclass(frozen=True)
class Sample:
    kind: str
    filename: str
    data: bytes
    text: str = ""  # for a recoverable file: text its parse must find


def one_page(catalog: bytes = b"<< /Type /Catalog /Pages 2 0 R >>",
             pages: bytes = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page: bytes = PAGE.encode(),
             content: bytes | None = None, trailer: str = "/Root 1 0 R", extra: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF (objects 1 catalog, 2 pages, 3 page, 4 content, 5 font, then `extra`), parts replaced."""
    return assemble([catalog, pages, page, content if content is not None else stream(CONTENT), FONT, *extra], trailer)


def nested(depth: int, open_: str, close: str, leaf: str = "0") -> str:
    return open_ * depth + leaf + close * depth


def empty() -> list[Sample]:
    return [Sample("empty", "empty.pdf", b""), Sample("empty", "blank.txt", b" \n\t \r\n "),
            Sample("empty", "lines.md", b"\r\n" * 200)]


def wrong_magic() -> list[Sample]:
    rng = random.Random(9)
    files = [
        ("image.pdf", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"),
        ("photo.pdf", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)),
        ("anim.pdf", b"GIF89a\x10\x00\x10\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04"),
        ("archive.pdf", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(20) + b"word/document.xml"),
        ("packed.pdf", gzip.compress(text_pdf(["zipped"]), mtime=0)),
        ("program.pdf", b"\x7fELF\x02\x01\x01\x00" + bytes(56)),
        ("utf16.pdf", "%PDF-1.4\nnot really".encode("utf-16")),
        ("late-magic.pdf", bytes(rng.randrange(128, 256) for _ in range(2048)) + text_pdf(["late"])),
    ]
    files += [(f"noise{seed}.pdf", random.Random(seed).randbytes(4096)) for seed in range(4)]
    return [Sample("wrong-magic", name, data) for name, data in files]


def bad_utf8() -> list[Sample]:
    files = [
        ("latin1.txt", "Caf\u00e9 au lait, cr\u00e8me br\u00fbl\u00e9e".encode("latin-1")),
        ("quotes.md", "# \u201cSmart\u201d quotes \u2013 dash".encode("cp1252")),
        ("cut-char.txt", "ends in the middle of \u20ac".encode()[:-1]),
        ("overlong.txt", b"slash as overlong \xc0\xaf sequence"),
        ("surrogate.md", b"a lone surrogate \xed\xa0\x80 here"),
        ("continuation.txt", b"stray \x80\x81\x82 continuation bytes"),
        ("nul.txt", b"text with a NUL\x00byte in it"),
        ("bom-latin1.md", b"\xef\xbb\xbf# Title\n" + "na\u00efve".encode("latin-1")),
    ]
    return [Sample("bad-utf8", name, data) for name, data in files]


def truncated() -> list[Sample]:
    """Cut before the end-of-file marker, at offsets spread over two different files."""
    plain = text_pdf(["Alpha page one.", "Beta page two.", "Gamma page three."])
    compressed = pypdf_compressed(plain)
    cuts = [(plain, len(plain) * k // 21) for k in range(1, 21)]
    cuts += [(compressed, len(compressed) * k // 6) for k in range(1, 6)]
    return [Sample("truncated", f"cut-{i}-at-{at}.pdf", data[:at]) for i, (data, at) in enumerate(cuts)]


def encrypted() -> list[Sample]:
    """Real encryption with a user password (pypdf's writer), and encryption dictionaries we cannot open."""
    files = [(f"locked-{alg.lower()}.pdf", pypdf_encrypted(alg)) for alg in ("RC4-40", "RC4-128", "AES-128", "AES-256")]
    rng = random.Random(3)
    o, u = rng.randbytes(32).hex(), rng.randbytes(32).hex()
    handlers = {
        "unknown-password.pdf": f"<< /Filter /Standard /V 2 /R 3 /Length 128 /O <{o}> /U <{u}> /P -3904 >>",
        "public-key.pdf": "<< /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s5 /V 4 /Recipients [<00ff>] >>",
        "unknown-handler.pdf": f"<< /Filter /NoSuchSecurity /V 1 /R 2 /O <{o}> /U <{u}> /P -4 >>",
        "future-version.pdf": f"<< /Filter /Standard /V 99 /R 99 /O <{o}> /U <{u}> /P -4 >>",
        "unknown-cipher.pdf": (f"<< /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /NoSuchCipher "
                               f"/Length 16 >> >> /StmF /StdCF /StrF /StdCF /O <{o}> /U <{u}> /P -4 >>"),
        "truncated-keys.pdf": "<< /Filter /Standard /V 5 /R 6 /Length 256 /O <00> /U <00> /OE <00> /UE <00> /P -4 >>",
    }
    ident = f"/ID [<{rng.randbytes(16).hex()}> <{rng.randbytes(16).hex()}>]"
    files += [(name, one_page(trailer=f"/Root 1 0 R /Encrypt 6 0 R {ident}", extra=(entry.encode(),)))
              for name, entry in handlers.items()]
    return [Sample("encrypted", name, data) for name, data in files]


def page_counts() -> list[Sample]:
    """Page trees that claim, or really hold, far more pages than any upload may have, or loop."""
    shared = "[" + " ".join(["6 0 R"] * 1000) + "]"  # one node listed 1000 times: 10^6 or 10^9 leaves
    files = [
        ("claims-billion.pdf", one_page(pages=b"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>")),
        ("claims-trillion.pdf", one_page(pages=b"<< /Type /Pages /Kids [3 0 R] /Count 1000000000000 >>")),
        ("million-leaves.pdf", one_page(pages=f"<< /Type /Pages /Kids {shared} /Count 1 >>".encode(),
                                        extra=(f"<< /Type /Pages /Kids [{' '.join(['3 0 R'] * 1000)}] >>".encode(),))),
        ("billion-leaves.pdf", one_page(pages=f"<< /Type /Pages /Kids {shared} /Count 1 >>".encode(),
                                        extra=(f"<< /Type /Pages /Kids {shared.replace('6 0', '7 0')} >>".encode(),
                                               f"<< /Type /Pages /Kids [{' '.join(['3 0 R'] * 1000)}] >>".encode()))),
        ("self-cycle.pdf", one_page(pages=b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>")),
        ("two-node-cycle.pdf", one_page(pages=b"<< /Type /Pages /Kids [6 0 R] /Count 1 >>",
                                        extra=(b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 3 0 R] /Count 1 >>",))),
        ("deep-tree.pdf", deep_page_tree(300)),
        ("wide-kids.pdf", one_page(pages=f"<< /Type /Pages /Kids [{' '.join(['3 0 R'] * 150_000)}] /Count 1 >>"
                                   .encode())),
        ("five-thousand-pages.pdf", text_pdf([f"p{i}" for i in range(5000)])),
        ("lying-count.pdf", text_pdf([f"p{i}" for i in range(3000)]).replace(b"/Count 3000", b"/Count 1", 1)),
    ]
    return [Sample("page-count", name, data) for name, data in files]


def deep_page_tree(depth: int) -> bytes:
    """A chain of /Pages nodes `depth` deep above the one page (objects 6..)."""
    chain = [f"<< /Type /Pages /Kids [{7 + i} 0 R] /Count 1 >>".encode() for i in range(depth - 1)]
    chain.append(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    return one_page(pages=b"<< /Type /Pages /Kids [6 0 R] /Count 1 >>", extra=tuple(chain))


def deeply_nested() -> list[Sample]:
    """Arrays and dictionaries nested thousands deep where a parser must read them."""
    arrays, dicts = nested(5000, "[", "]"), nested(5000, "<< /A ", " >>")
    files = [
        ("arrays-in-catalog.pdf", one_page(catalog=f"<< /Type /Catalog /Pages 2 0 R /X {arrays} >>".encode())),
        ("arrays-in-page.pdf", one_page(page=PAGE.replace("/Type /Page", f"/Type /Page /X {arrays}").encode())),
        ("arrays-as-contents.pdf", one_page(page=PAGE.replace("4 0 R", nested(5000, "[", "]", "4 0 R")).encode())),
        ("arrays-in-content.pdf", one_page(content=stream(f"BT /F1 12 Tf {nested(5000, '[', ']', '(x)')} TJ ET"
                                                          .encode()))),
        ("dicts-in-content.pdf", one_page(content=stream(f"/P {dicts} BDC BT /F1 12 Tf (x) Tj ET EMC".encode()))),
        ("dicts-in-image.pdf", one_page(content=stream(f"BT /F1 12 Tf (x) Tj ET BI /D {dicts} ID xx EI".encode()))),
        ("arrays-in-trailer.pdf", one_page(trailer=f"/Root 1 0 R /X {arrays}")),
        ("mixed-in-kids.pdf", one_page(pages=f"<< /Type /Pages /Kids [3 0 R {nested(3000, '[<< /K ', '>>]')}] "
                                             f"/Count 1 >>".encode())),
        ("hundred-thousand-deep.pdf", one_page(catalog=f"<< /Type /Catalog /Pages 2 0 R "
                                                       f"/X {nested(100_000, '[', ']')} >>".encode())),
        ("reference-chain.pdf", one_page(catalog=b"<< /Type /Catalog /Pages 6 0 R >>",
                                         extra=tuple(f"{7 + i} 0 R".encode() for i in range(3000))
                                         + (b"2 0 R",))),
    ]
    return [Sample("nested", name, data) for name, data in files]


def broken_structure() -> list[Sample]:
    """Damaged xref tables, trailers, catalogs and streams."""
    good = one_page()
    files = [
        ("no-catalog.pdf", one_page(catalog=b"<< /Type /NotCatalog /Pages 2 0 R >>", trailer="/Info 5 0 R")),
        ("huge-stream-length.pdf", one_page(content=b"<< /Length 1000000000000 >>\nstream\n" + CONTENT
                                            + b"\nendstream")),
        ("no-endstream.pdf", good[:good.index(b"endstream")]),
        ("no-pages.pdf", one_page(catalog=b"<< /Type /Catalog >>")),
        ("pages-is-string.pdf", one_page(catalog=b"<< /Type /Catalog /Pages (two) >>")),
        ("kids-not-array.pdf", one_page(pages=b"<< /Type /Pages /Kids 3 /Count 1 >>")),
        ("garbage-xref.pdf", b"%PDF-1.7\n" + bytes(random.Random(5).randrange(256) for _ in range(600))
         + b"\nxref\n0 3\nzzzz\ntrailer\n<< /Root 1 0 R /Size 3 >>\nstartxref\n9\n%%EOF\n"),
        ("xref-stream-bad-widths.pdf", lone_object(stream(b"\x01\x02\x03", "/Type /XRef /W [99 99 99] /Size 2 "
                                                                            "/Root 1 0 R "))),
        ("object-stream-garbage.pdf", lone_object(stream(zlib.compress(b"\xff" * 50), "/Type /ObjStm /N 3 /First 9 "
                                                                                      "/Filter /FlateDecode "),
                                                  b"trailer\n<< /Root 2 0 R /Size 3 >>\n")),
        ("header-and-eof.pdf", b"%PDF-1.4\n%%EOF\n"),
        ("no-objects.pdf", b"%PDF-1.4\n" + b"% just comments\n" * 50 + b"trailer\n<< >>\nstartxref\n0\n%%EOF\n"),
        ("empty-page-tree.pdf", one_page(pages=b"<< /Type /Pages /Kids [] /Count 0 >>")),
    ]
    return [Sample("structure", name, data) for name, data in files]


def lone_object(body: bytes, trailer: bytes = b"") -> bytes:
    """A file of one object, whose start `startxref` points at."""
    return b"%PDF-1.5\n1 0 obj\n" + body + b"\nendobj\n" + trailer + b"startxref\n9\n%%EOF\n"


def bad_compression() -> list[Sample]:
    """Page contents whose filters cannot be decoded, or decode far past any sane size."""
    rng = random.Random(7)
    deflated = zlib.compress(CONTENT)
    bomb = zlib.compressobj(9)
    bomb = bomb.compress(b"BT ") + b"".join(bomb.compress(b" " * 1_000_000) for _ in range(100)) + bomb.flush()
    contents = {
        "flate-garbage.pdf": stream(rng.randbytes(300), "/Filter /FlateDecode "),
        "flate-truncated.pdf": stream(deflated[:len(deflated) // 2], "/Filter /FlateDecode "),
        "filters-in-wrong-order.pdf": stream(deflated, "/Filter [/ASCII85Decode /FlateDecode] "),
        "unknown-filter.pdf": stream(CONTENT, "/Filter /NoSuchDecode "),
        "lzw-garbage.pdf": stream(rng.randbytes(300), "/Filter /LZWDecode "),
        "hex-garbage.pdf": stream(b"zz not hex at all qq" * 10, "/Filter /ASCIIHexDecode "),
        "ascii85-garbage.pdf": stream(b"~~~ {{{ not base-85 }}} " * 10, "/Filter /ASCII85Decode "),
        "twenty-filters.pdf": stream(CONTENT, "/Filter [" + " /ASCIIHexDecode" * 20 + "] "),
        "flate-bomb.pdf": stream(bomb, "/Filter /FlateDecode "),
        "predictor-absurd.pdf": stream(deflated, "/Filter /FlateDecode /DecodeParms << /Predictor 12 "
                                                 "/Columns 999999999 /Colors 255 >> "),
    }
    return [Sample("compression", name, one_page(content=data)) for name, data in contents.items()]


def malformed_files() -> list[Sample]:
    """The 100 malformed uploads, always the same bytes in the same order."""
    files = (empty() + wrong_magic() + bad_utf8() + truncated() + encrypted() + page_counts() + deeply_nested()
             + broken_structure() + bad_compression())
    assert len(files) == 100 and len({f.filename for f in files}) == 100
    return files


def recoverable_files() -> list[Sample]:
    """Damaged PDFs whose text is all there: pypdf reads them, as it should, and so they end READY."""
    words = "Readable words on the page."
    first, kept = text_pdf(["First revision keeps its words."]), "First revision keeps its words."
    good = one_page()
    table = good[good.index(b"xref"):good.index(b"trailer")]
    offsets_wrong = good.replace(table, re.sub(rb"\d{10} 00000 n", b"0000000001 00000 n", table))
    files = [
        ("cut-in-eof-marker.pdf", text_pdf(["Cut inside the end marker."])[:-5], "Cut inside the end marker."),
        ("unfinished-update.pdf", first + b"3 0 obj\n<< /Type /Page /Parent 2 0 R /Conte", kept),
        ("xref-offsets-wrong.pdf", offsets_wrong, words),
        ("trailing-junk.pdf", good + b"\x00\xff" * 100, words),
        ("no-root-in-trailer.pdf", one_page(trailer="/Info 5 0 R"), words),
        ("count-not-a-number.pdf", one_page(pages=b"<< /Type /Pages /Kids [3 0 R] /Count (many) >>"), words),
        ("flate-bad-checksum.pdf", one_page(content=stream(zlib.compress(CONTENT)[:-4] + bytes(4),
                                                           "/Filter /FlateDecode ")), words),
        ("dicts-nested-in-catalog.pdf", one_page(catalog=f"<< /Type /Catalog /Pages 2 0 R "
                                                         f"/X {nested(5000, '<< /A ', ' >>')} >>".encode()), words),
    ]
    return [Sample("recoverable", name, data, text) for name, data, text in files]


def pypdf_compressed(data: bytes) -> bytes:
    """`data` rewritten by pypdf with compressed page contents."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    for page in writer.pages:
        page.compress_content_streams()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pypdf_encrypted(algorithm: str) -> bytes:
    """A one-page PDF encrypted with a user password; pypdf's salts and IVs come from a seeded generator."""
    rng = random.Random(algorithm)
    with mock.patch("secrets.token_bytes", rng.randbytes):
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(["Locked text."]))))
        writer.encrypt("user-secret", "owner-secret", algorithm=algorithm)
        out = io.BytesIO()
        writer.write(out)
    return out.getvalue()
